"""Notifiers: a rendered notification in, a delivery (or a retryable/permanent error) out."""
