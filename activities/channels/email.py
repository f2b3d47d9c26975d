"""Email over SMTP with aiosmtplib."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib

from definitions.errors import PermanentDeliveryError, RetryableDeliveryError
from journeys.config import EmailSettings

from .base import Delivery, Outgoing

__all__ = ["EmailChannel"]


class EmailChannel:
    """Sends a multipart (text + HTML) email to the profile's ``email``."""

    name = "email"

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    def address(self, profile: dict[str, Any], step: Any, render: Any) -> str | None:
        """The profile's ``email`` attribute."""
        value = profile.get("email")
        return value if isinstance(value, str) and "@" in value else None

    def build(self, message: Outgoing) -> EmailMessage:
        """The MIME message for an outgoing email."""
        mail = EmailMessage()
        mail["From"] = self.settings.sender
        mail["To"] = message.address
        mail["Subject"] = message.content.get("subject", "")
        domain = self.settings.sender.rsplit("@", 1)[-1].strip("> ") or "journeys.local"
        digest = hashlib.sha256(message.message_id.encode()).hexdigest()[:32]
        mail["Message-ID"] = make_msgid(idstring=digest, domain=domain)
        mail["X-Journeys-Message-Id"] = message.message_id
        text, html = message.content.get("text"), message.content.get("html")
        mail.set_content(text if text is not None else "")
        if html is not None:
            mail.add_alternative(html, subtype="html")
        return mail

    async def deliver(self, message: Outgoing) -> Delivery:
        """Send over SMTP; 5xx replies are permanent, the rest retryable."""
        mail = self.build(message)
        s = self.settings
        try:
            errors, reply = await aiosmtplib.send(
                mail,
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=s.password,
                use_tls=s.security == "tls",
                start_tls=s.security == "starttls" or None,
                timeout=s.timeout,
                cert_bundle=s.ca_file,
            )
        except aiosmtplib.SMTPResponseException as exc:
            error = f"SMTP {exc.code}: {exc.message}"
            if 500 <= exc.code < 600:
                raise PermanentDeliveryError(error) from exc
            raise RetryableDeliveryError(error) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise RetryableDeliveryError(f"SMTP server {s.host}:{s.port}: {exc}") from exc
        if errors:
            raise PermanentDeliveryError(f"recipient refused: {errors}")
        return Delivery(provider_id=mail["Message-ID"], detail={"smtp_reply": reply})

    async def close(self) -> None:
        """Nothing to release: each send opens its own connection."""
