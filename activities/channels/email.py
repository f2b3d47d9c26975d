"""Email over SMTP with aiosmtplib, reusing connections across sends."""

from __future__ import annotations

import asyncio
import hashlib
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib

from definitions.errors import (
    InvalidAddressError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from journeys.config import EmailSettings

from .base import Delivery, Outgoing, Render, Withdrawn

__all__ = ["EmailChannel"]


class EmailChannel:
    """Sends a multipart (text + HTML) email to the profile's ``email``.

    Up to ``connections`` SMTP connections stay open between sends and are reused; one the
    server closed in the meantime is replaced transparently.
    """

    name = "email"

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots: asyncio.Semaphore | None = None
        self.connections_opened = 0
        """How many SMTP connections this channel has opened (for tests and metrics)."""

    def addresses(self, profile: dict[str, Any], step: Any, render: Render) -> list[str]:
        """The profile's ``email`` attribute."""
        value = profile.get("email")
        if value is None or value == "":
            return []
        if not isinstance(value, str) or value.count("@") != 1 or " " in value.strip():
            raise InvalidAddressError(f"invalid email address {value!r}")
        return [value.strip()]

    def build(self, message: Outgoing) -> EmailMessage:
        """The MIME message for an outgoing email."""
        mail = EmailMessage()
        mail["From"] = self.settings.sender
        mail["To"] = message.addresses[0]
        mail["Subject"] = message.content.get("subject", "")
        domain = self.settings.sender.rsplit("@", 1)[-1].strip("> ") or "journeys.local"
        digest = hashlib.sha256(message.message_id.encode()).hexdigest()[:32]
        mail["Message-ID"] = make_msgid(idstring=digest, domain=domain)
        mail["X-Journeys-Message-Id"] = message.message_id
        if not message.transactional and message.unsubscribe_url:
            mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        text, html = message.content.get("text"), message.content.get("html")
        mail.set_content(text if text is not None else "")
        if html is not None:
            mail.add_alternative(html, subtype="html")
        return mail

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls" or None,
            timeout=s.timeout,
            cert_bundle=s.ca_file,
        )
        await smtp.connect()
        self.connections_opened += 1
        return smtp

    async def deliver(self, message: Outgoing) -> Delivery:
        """Send over SMTP; 5xx replies are permanent, the rest retryable."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.connections)
        mail = self.build(message)
        async with self._slots:
            reused = bool(self._idle)
            try:
                smtp = self._idle.pop() if reused else await self._connect()
                try:
                    await message.handover()
                except Withdrawn:
                    self._idle.append(smtp)
                    raise
                try:
                    errors, reply = await smtp.send_message(mail)
                except aiosmtplib.SMTPServerDisconnected:
                    if not reused:
                        raise
                    smtp = await self._connect()  # the kept connection had gone stale
                    errors, reply = await smtp.send_message(mail)
            except aiosmtplib.SMTPResponseException as exc:
                error = f"SMTP {exc.code}: {exc.message}"
                if 500 <= exc.code < 600:
                    raise PermanentDeliveryError(error) from exc
                raise RetryableDeliveryError(error) from exc
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise RetryableDeliveryError(
                    f"SMTP server {self.settings.host}:{self.settings.port}: {exc}"
                ) from exc
            self._idle.append(smtp)
        if errors:
            raise PermanentDeliveryError(f"recipient refused: {errors}")
        return Delivery(provider_id=mail["Message-ID"], detail={"smtp_reply": reply})

    async def close(self) -> None:
        """Close the kept connections."""
        while self._idle:
            smtp = self._idle.pop()
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()
