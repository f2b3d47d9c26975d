"""Channels against real local peers: SMTP with STARTTLS and login, implicit TLS, webhooks."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from activities.channels import EmailChannel, Outgoing, WebhookChannel
from activities.channels.email import EmailSettings
from activities.channels.headers import FALLBACK_DOMAIN, sender_domain
from activities.channels.webhook import WebhookSettings, webhook_id
from definitions.errors import (
    InvalidAddressError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from journeys.devserver import free_port
from journeys.sinks import MailCatcher, WebhookSink
from tests.mailcheck import check_email


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (session.authenticated, message_from_bytes(envelope.content, policy=policy.default))
        )
        return "250 OK"


def only_ada(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"ada", b"s3cret")
    return AuthResult(success=ok)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[trustme.CA, Path]]:
    authority = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    yield authority, path


def server_context(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def outgoing(address: str, **content: Any) -> Outgoing:
    return Outgoing("j/u/run/step/email", [address], content)


async def test_starttls_with_login(ca: tuple[trustme.CA, Path]) -> None:
    authority, ca_file = ca
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context(authority),
        require_starttls=True,
        authenticator=only_ada,
        auth_require_tls=True,
    )
    controller.start()
    try:
        channel = EmailChannel(
            EmailSettings(
                host="127.0.0.1",
                port=port,
                security="starttls",
                username="ada",
                password="s3cret",
                sender="Acme <hello@acme.example>",
                ca_file=str(ca_file),
            )
        )
        await channel.deliver(outgoing("to@example.com", subject="Hi", text="t", html="<b>h</b>"))
    finally:
        controller.stop()
    [(authenticated, mail)] = inbox.messages
    assert authenticated
    assert mail["From"] == "Acme <hello@acme.example>"
    assert mail["Message-ID"].endswith("@acme.example>")
    assert mail.get_body(("plain",)).get_content().strip() == "t"
    assert mail.get_body(("html",)).get_content().strip() == "<b>h</b>"


async def test_implicit_tls(ca: tuple[trustme.CA, Path]) -> None:
    authority, ca_file = ca
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, ssl_context=server_context(authority)
    )
    controller.start()
    try:
        channel = EmailChannel(
            EmailSettings(host="127.0.0.1", port=port, security="tls", ca_file=str(ca_file))
        )
        await channel.deliver(outgoing("to@example.com", subject="Over TLS", text="t"))
    finally:
        controller.stop()
    assert inbox.messages[0][1]["Subject"] == "Over TLS"


async def test_smtp_rejection_and_unreachable_server() -> None:
    catcher = MailCatcher().start()
    try:
        catcher.reject_code = 550
        channel = EmailChannel(EmailSettings(host="127.0.0.1", port=catcher.port))
        with pytest.raises(PermanentDeliveryError, match="550"):
            await channel.deliver(outgoing("to@example.com", subject="x", text="y"))
        catcher.reject_code = 451
        with pytest.raises(RetryableDeliveryError, match="451"):
            await channel.deliver(outgoing("to@example.com", subject="x", text="y"))
    finally:
        catcher.stop()
    closed = EmailChannel(EmailSettings(host="127.0.0.1", port=free_port(), timeout=2))
    with pytest.raises(RetryableDeliveryError):
        await closed.deliver(outgoing("to@example.com", subject="x", text="y"))


# An id of the value domain at its oddest: non-ASCII, a line separator (not a control
# character), "%", longer than a header line.
ODD_ID = "wf/ü%20/\u2028/" + "x" * 250 + "/email"


@pytest.fixture
def catcher() -> Iterator[MailCatcher]:
    server = MailCatcher().start()
    yield server
    server.stop()


async def test_email_passes_a_strict_receiver(catcher: MailCatcher) -> None:
    sent_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    text = "Hello Zoë,\n" + "a" * 2000 + "\n"
    html = "<p>" + "é" * 1500 + "</p>\n"
    channel = EmailChannel(
        EmailSettings(host="127.0.0.1", port=catcher.port, sender="Zoë Ä <hello@acme.example>")
    )
    message = Outgoing(
        ODD_ID,
        ["to@example.com"],
        {"subject": "Grüße,\r\nAda — 50%\toff", "text": text, "html": html},
        unsubscribe_url="https://acme.example/unsubscribe?token=abc.def",
        date=sent_at,
    )
    try:
        delivery = await channel.deliver(message)
    finally:
        await channel.close()
    [raw] = catcher.received
    mail = check_email(raw)
    assert mail["Date"].datetime == sent_at
    assert str(mail["From"]) == "Zoë Ä <hello@acme.example>"
    assert mail["Subject"] == "Grüße, Ada — 50% off"
    assert mail["List-Unsubscribe"] == "<https://acme.example/unsubscribe?token=abc.def>"
    assert delivery.provider_id == mail["Message-ID"]
    assert unquote(mail["X-Journeys-Message-Id"]) == ODD_ID
    for kind, sent in (("plain", text), ("html", html)):  # as sent, line ends aside
        assert mail.get_body((kind,)).get_content().replace("\r\n", "\n") == sent


async def test_every_attempt_at_a_message_has_its_message_id_and_date(
    catcher: MailCatcher,
) -> None:
    first_due = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    channel = EmailChannel(EmailSettings(host="127.0.0.1", port=catcher.port))
    content = {"subject": "Hi", "text": "t", "html": "<p>h</p>"}
    retried = Outgoing("j/r/step/email", ["to@example.com"], content, date=first_due)
    catcher.refuse_next = [451]
    try:
        with pytest.raises(RetryableDeliveryError, match="451"):
            await channel.deliver(retried)
        await channel.deliver(retried)
        await channel.deliver(Outgoing("j/r/other/email", ["to@example.com"], content))
    finally:
        await channel.close()
    assert catcher.received[0] == catcher.received[1]  # a retry is the same bytes
    refused, accepted, other = (check_email(raw) for raw in catcher.received)
    assert refused["Message-ID"] == accepted["Message-ID"]
    assert refused["Date"] == accepted["Date"]
    assert accepted["Date"].datetime == first_due
    assert other["Message-ID"] != accepted["Message-ID"]
    assert other["Date"].datetime.tzinfo is not None


@pytest.mark.parametrize(
    ("sender", "domain"),
    [
        ("Acme <hello@acme.example>", "acme.example"),
        ("hello@Acme.Example", "acme.example"),
        ('"a@b" <c@d.example>', "d.example"),
        ("Bücher <post@bücher.example>", "xn--bcher-kva.example"),
        ("ops@[127.0.0.1]", "[127.0.0.1]"),
        ("nobody", FALLBACK_DOMAIN),
        ("a@exa..mple", FALLBACK_DOMAIN),
        ("Acme <>", FALLBACK_DOMAIN),
    ],
)
def test_message_id_domain_from_the_sender(sender: str, domain: str) -> None:
    assert sender_domain(sender) == domain


@pytest.mark.parametrize(
    "address",
    [
        "a@b.example\r\nBcc: x@y.example",
        "a@b\u2028.example",
        "a@b\x07.example",
        "a b@c.example",
        "a@@b",
        5,
    ],
)
def test_unusable_email_addresses(address: object) -> None:
    channel = EmailChannel(EmailSettings())
    with pytest.raises(InvalidAddressError):
        channel.addresses({"email": address}, None, str)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (200, None),
        (204, None),
        (410, PermanentDeliveryError),
        (400, PermanentDeliveryError),
        (429, RetryableDeliveryError),
        (503, RetryableDeliveryError),
    ],
)
async def test_webhook_statuses(status: int, error: type[Exception] | None) -> None:
    sink = WebhookSink().start()
    sink.status = status
    channel = WebhookChannel(WebhookSettings(timeout=5, allow_private=["127.0.0.0/8"]))
    message = Outgoing("run/step/webhook", [f"{sink.url}/in"], {"body": {"a": 1}}, {"x-extra": "1"})
    try:
        if error is None:
            delivery = await channel.deliver(message)
            assert delivery.detail == {"status": status}
            assert delivery.provider_id == webhook_id("run/step/webhook")
        else:
            with pytest.raises(error, match=str(status)):
                await channel.deliver(message)
    finally:
        await channel.close()
        sink.stop()
    [request] = sink.requests
    assert request.body == {"a": 1}
    assert request.headers["webhook-id"] == webhook_id("run/step/webhook")
    assert request.headers["x-extra"] == "1"
    assert request.headers["content-type"] == "application/json"


async def test_webhook_unreachable_is_retryable() -> None:
    channel = WebhookChannel(WebhookSettings(timeout=2, allow_private=["127.0.0.0/8"]))
    try:
        with pytest.raises(RetryableDeliveryError):
            await channel.deliver(Outgoing("m", [f"http://127.0.0.1:{free_port()}/"], {"body": {}}))
    finally:
        await channel.close()
