"""Sandboxed Jinja for rule conditions and message templates."""
