"""A small Celery app for integration tests: real tasks that succeed, fail, retry, sleep and overrun."""
