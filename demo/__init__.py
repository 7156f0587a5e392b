"""The newcomer demo: a small instrumented Celery app, a webhook sink, and ``demo.run``, which starts them
with a private broker, Pushgateway and alertd, fails a payment and shows the page arrive."""
