"""alertd-email: alertd notifications as email, through an SMTP smarthost."""

from __future__ import annotations

from alertd_email.plugin import EmailNotifier, EmailSettings

__all__ = ["EmailNotifier", "EmailSettings"]
