"""Email over SMTP with aiosmtplib, reusing connections across sends.

The channel: ``[email]`` settings, the template's ``email`` variant (a subject and an HTML
body, a text body or both), the profile's ``email`` attribute, retried for 24 hours.
"""

from __future__ import annotations

import asyncio
import unicodedata
from datetime import UTC, datetime, timedelta
from email.headerregistry import BaseHeader
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Literal

import aiosmtplib
from aiosmtplib.email import extract_recipients, extract_sender
from pydantic import Field, model_validator

from definitions.channels import ChannelSettings, ChannelSpec
from definitions.errors import (
    InvalidAddressError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from definitions.model import SchemaModel, invalid

from .base import Delivery, Outgoing, Render, Withdrawn
from .headers import (
    POLICY,
    Verbatim,
    boundary,
    date_header,
    fixed_header,
    message_id_header,
    one_line,
    quoted_id,
    set_header,
    simple_address,
    unsubscribe_header,
)
from .mime import set_body

if TYPE_CHECKING:
    from definitions.steps.send import SendStep

__all__ = ["CHANNEL", "EmailChannel", "EmailSettings", "EmailVariant"]


class EmailVariant(SchemaModel):
    """An email: a subject and an HTML body, a text body, or both."""

    subject: str
    html: str | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _has_body(self) -> EmailVariant:
        if self.html is None and self.text is None:
            raise invalid("an email needs a body: expected 'html' or 'text', found neither")
        return self


class EmailSettings(ChannelSettings):
    """The SMTP server that sends email (``[email]``)."""

    host: str = "localhost"
    port: int = 1025
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    """Only from JOURNEYS_EMAIL_PASSWORD."""
    sender: str = "Journeys <journeys@localhost>"
    timeout: float = 30.0
    ca_file: str | None = None
    """A CA bundle to verify the server's certificate with (default: the system's)."""
    connections: int = Field(default=2, ge=1, le=64)
    """SMTP connections a worker keeps open and reuses across sends."""


class EmailChannel:
    """Sends a multipart (text + HTML) email to the profile's ``email``.

    Every message carries the two fields RFC 5322 requires, ``Date`` and ``From``, and a
    ``Message-ID`` derived from the engine's message id alone, so every attempt at one
    message carries the same one (:mod:`.headers`).

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
        self._from: Verbatim | BaseHeader | None = None
        self._sender: str | None = None

    def addresses(self, profile: dict[str, Any], step: SendStep, render: Render) -> list[str]:
        """The profile's ``email`` attribute."""
        value = profile.get("email")
        if value is None or value == "":
            return []
        if not isinstance(value, str):
            raise InvalidAddressError(f"invalid email address {value!r}")
        address = value.strip()
        if address.count("@") != 1 or any(
            ch.isspace() or unicodedata.category(ch) == "Cc" for ch in address
        ):
            raise InvalidAddressError(f"invalid email address {value!r}")
        return [address]

    def build(self, message: Outgoing) -> EmailMessage:
        """The MIME message for an outgoing email.

        ``Date`` is ``message.date`` (when the message was first to go out: the same on a
        retry, as a mail server's queue keeps it), else now; with the ``Message-ID`` and
        the MIME boundary derived from the message id, a retry is the same bytes.

        Long lines of the text and HTML parts are quoted-printable or base64, as the
        generator finds shorter, so no line passes RFC 5322's limits; non-ASCII in the
        subject and names is RFC 2047-encoded.
        """
        return self._build(message)[0]

    def _build(self, message: Outgoing) -> tuple[EmailMessage, str]:
        """:meth:`build`'s message and its ``Message-ID``.

        Header values the generator writes out as they are go in unparsed, the rest
        through the header registry (:func:`.headers.set_header`); ``From``, the same for
        every message, is prepared once per channel.
        """
        mail = EmailMessage(policy=POLICY)
        msg_id = message_id_header(message.message_id, self.settings.sender)
        set_header(mail, "Date", date_header(message.date or datetime.now(UTC)))
        if self._from is None:
            self._from = fixed_header("From", self.settings.sender)
        set_header(mail, "From", self._from)
        set_header(mail, "To", message.addresses[0])
        set_header(mail, "Subject", one_line(str(message.content.get("subject", ""))))
        set_header(mail, "Message-ID", msg_id)
        set_header(mail, "X-Journeys-Message-Id", quoted_id(message.message_id))
        if not message.transactional and message.unsubscribe_url:
            set_header(mail, "List-Unsubscribe", unsubscribe_header(message.unsubscribe_url))
            set_header(mail, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
        text, html = message.content.get("text"), message.content.get("html")
        chosen = None if html is None else boundary(message.message_id, [str(text), str(html)])
        set_body(mail, text, html, chosen)
        return mail, msg_id

    def _envelope(self, mail: EmailMessage, address: str) -> tuple[str, list[str]]:
        """The SMTP envelope aiosmtplib's ``send_message`` would take from the headers.

        The sender is the same for every message, so it is taken from the first one; the
        recipient is the address itself when it is plain (the ``To`` header's address is
        then the address), else taken from the header as aiosmtplib does.
        """
        if self._sender is None:
            sender = extract_sender(mail)
            if sender is None:
                raise ValueError("No From header provided in message")
            self._sender = sender
        recipients = [address] if simple_address(address) else extract_recipients(mail)
        if not recipients:
            raise ValueError("No recipient headers provided in message")
        return self._sender, recipients

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
        mail, msg_id = self._build(message)
        async with self._slots:
            reused = bool(self._idle)
            try:
                smtp = self._idle.pop() if reused else await self._connect()
                try:
                    await message.handover()
                except Withdrawn:
                    self._idle.append(smtp)
                    raise
                sender, recipients = self._envelope(mail, message.addresses[0])
                try:
                    errors, reply = await smtp.send_message(
                        mail, sender=sender, recipients=recipients
                    )
                except aiosmtplib.SMTPServerDisconnected:
                    if not reused:
                        raise
                    smtp = await self._connect()  # the kept connection had gone stale
                    errors, reply = await smtp.send_message(
                        mail, sender=sender, recipients=recipients
                    )
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
        return Delivery(provider_id=msg_id, detail={"smtp_reply": reply})

    async def close(self) -> None:
        """Close the kept connections."""
        while self._idle:
            smtp = self._idle.pop()
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()


CHANNEL = ChannelSpec(
    name="email",
    variant=EmailVariant,
    settings=EmailSettings,
    open=EmailChannel,
    secrets=("password",),
    retry_window=timedelta(hours=24),
)
