"""Alerts: condition results in, alert states and their history out."""
