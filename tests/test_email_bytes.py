"""Golden bytes: what an email goes out as is what the code before the CPU work sent.

:func:`reference_build` is ``EmailChannel.build`` as it was (every header through the
header registry of ``email.policy.default``), sent with aiosmtplib's ``send_message``,
which took the envelope from the headers. For a varied set of messages, senders and
server extensions (8BITMIME, SMTPUTF8 or neither), the channel's ``deliver`` must hand
aiosmtplib's ``sendmail`` the very same sender, recipients, message bytes and options (all
that goes on the wire), and report the same provider id; its ``build`` must flatten to the
same bytes under each policy aiosmtplib may pick.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any
from urllib.parse import quote

import aiosmtplib
import pytest
from aiosmtplib.email import extract_recipients, flatten_message
from hypothesis import given, settings
from hypothesis import strategies as st

from activities.channels import EmailChannel, Outgoing, mime
from activities.channels.email import EmailSettings
from activities.channels.headers import (
    POLICY,
    _verbatim,
    boundary,
    date_header,
    message_id_header,
    one_line,
    quoted_id,
    simple_address,
    unsubscribe_header,
)
from definitions.errors import PermanentDeliveryError, RetryableDeliveryError


def reference_build(sender: str, message: Outgoing) -> EmailMessage:
    """``EmailChannel.build`` before the CPU work, verbatim."""
    mail = EmailMessage()
    mail["Date"] = date_header(message.date or datetime.now(UTC))
    mail["From"] = sender
    mail["To"] = message.addresses[0]
    mail["Subject"] = one_line(str(message.content.get("subject", "")))
    mail["Message-ID"] = message_id_header(message.message_id, sender)
    mail["X-Journeys-Message-Id"] = quoted_id(message.message_id)
    if not message.transactional and message.unsubscribe_url:
        mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    text, html = message.content.get("text"), message.content.get("html")
    mail.set_content(text if text is not None else "")
    if html is not None:
        mail.add_alternative(html, subtype="html")
        if chosen := boundary(message.message_id, [str(text), str(html)]):
            mail.set_boundary(chosen)
    return mail


class Recorder(aiosmtplib.SMTP):
    """An SMTP client offering ``extensions`` that records what ``sendmail`` is given."""

    def __init__(self, extensions: Sequence[str]) -> None:
        super().__init__(hostname="127.0.0.1", port=9)
        self.offered = {name: "" for name in extensions}
        self.sent: list[tuple[Any, ...]] = []

    async def _ehlo_or_helo_if_needed(self) -> None:
        self.esmtp_extensions = dict(self.offered)

    async def sendmail(  # type: ignore[override]
        self, sender: str, recipients: Sequence[str], message: bytes, /, **options: Any
    ) -> tuple[dict[str, Any], str]:
        self.sent.append((sender, list(recipients), message, options))
        return {}, "250 OK"

    async def quit(self, **kwargs: Any) -> Any:
        return None


_UNSUBSCRIBE = re.compile(rb"^List-Unsubscribe: .*\r\n(?:[ \t].*\r\n)*", re.MULTILINE)


def _masked(data: bytes) -> bytes:
    """The message less its ``List-Unsubscribe`` header, which changed on purpose.

    The old code let the registry fold a long or non-ASCII link into an RFC 2047 encoded
    word, which mail clients do not read as a link; it is now one line, the URI as it is
    (:func:`test_the_unsubscribe_link_is_one_line_never_an_encoded_word`).
    """
    return _UNSUBSCRIBE.sub(b"", data)


def _masked_sent(result: Any) -> Any:
    sent, outcome = result
    return [(a, b, _masked(bytes(c)), d) for a, b, c, d in sent], outcome


def _outcome(exc: BaseException) -> tuple[str, str]:
    return type(exc).__name__, str(exc)


async def reference_send(sender: str, message: Outgoing, extensions: Sequence[str]) -> Any:
    """What the old ``deliver`` handed ``sendmail``, and its provider id (or its error)."""
    smtp = Recorder(extensions)
    mail = reference_build(sender, message)
    random.seed(5)  # a boundary the parts contain is replaced by a random one
    try:
        await smtp.send_message(mail)
    except Exception as exc:  # the error is the outcome compared
        return smtp.sent, _outcome(exc)
    return smtp.sent, str(mail["Message-ID"])


async def channel_send(sender: str, message: Outgoing, extensions: Sequence[str]) -> Any:
    """What ``EmailChannel.deliver`` hands ``sendmail``, and its provider id (or error)."""
    smtp = Recorder(extensions)
    channel = EmailChannel(EmailSettings(sender=sender))

    async def connect() -> aiosmtplib.SMTP:
        return smtp

    channel._connect = connect  # type: ignore[method-assign]
    random.seed(5)
    try:
        delivery = await channel.deliver(message)
    except (RetryableDeliveryError, PermanentDeliveryError) as exc:
        assert exc.__cause__ is not None
        return smtp.sent, _outcome(exc.__cause__)
    except Exception as exc:  # the error is the outcome compared
        return smtp.sent, _outcome(exc)
    finally:
        await channel.close()
    return smtp.sent, delivery.provider_id


SENDERS = [
    "Journeys <journeys@localhost>",
    '"Ana Núñez" <ana@example.com>',
    "news@example.com",
    '"Doe, Jane" <jane@example.com>',
    "Büro <info@bücher.example>",
    "Acme <hello@[192.0.2.1]>",
    f"Long <x@{'a' * 60}.example.com>",
    "=?utf-8?q?Caf=C3=A9?= <cafe@example.com>",
]

EXTENSIONS = [("8bitmime", "smtputf8"), ("8bitmime",), (), ("smtputf8",)]

WHEN = datetime(2026, 12, 8, 0, 15, 18, tzinfo=UTC)
ODD_ID = "wf/ü%20/\u2028/" + "x" * 250 + "/email"
HTML = (
    "<html><body><p>Hello <b>Ana</b>, <a href='https://example.com/a'>read</a>.</p></body></html>"
)


def _clash() -> str:
    chosen = boundary("clash/email", [])
    assert chosen is not None
    return f"a part holding its own boundary: {chosen}"


def messages() -> list[tuple[str, Outgoing]]:
    """Outgoing emails covering what varies: subjects, bodies, ids, dates, addresses."""

    def one(
        label: str,
        *,
        message_id: str = "j/run-1/step/ana@example.com/email",
        address: str = "ana@example.com",
        transactional: bool = False,
        unsubscribe_url: str | None = "https://journeys.example.com/u/abc123",
        date: datetime = WHEN,
        **content: Any,
    ) -> tuple[str, Outgoing]:
        return label, Outgoing(
            message_id,
            [address],
            content,
            transactional=transactional,
            unsubscribe_url=unsubscribe_url,
            date=date,
        )

    long_line = "word " * 60 + "end"
    return [
        one("ascii text only, transactional", subject="Hi", text="Hello", transactional=True),
        one("text and html", subject="Your weekly update", text="Hello Ana\n", html=HTML),
        one("non-ASCII subject", subject="Grüße, Ana! ☕", text="Hallo", html="<p>Hallo</p>"),
        one("non-ASCII body, short lines", subject="Café", text="Ça va?\nOui.\n", html="<p>é</p>"),
        one("non-ASCII body, long line", subject="x", text="é" * 300, html="<p>" + "ü" * 900),
        one("long ASCII lines", subject="Long", text=long_line, html=f"<p>{'x' * 1200}</p>"),
        one("long ASCII subject", subject="A subject " * 12, text="t"),
        one("subject 69 characters", subject="s" * 69, text="t"),
        one("subject 70 characters", subject="s" * 70, text="t"),
        one("subject 68 characters with spaces", subject="ab " * 22 + "cd", text="t"),
        one("encoded word in subject", subject="=?utf-8?q?hi?= there", text="t"),
        one("subject with line breaks", subject="Hello\r\nBcc: x@example.com\tnow", text="t"),
        one("empty subject", subject="", text="t"),
        one("no subject", text="t"),
        one("subject of specials", subject='Re: [list] "quoted" (c) <a@b> a, b; c:', text="t"),
        one("html only", subject="HTML", html=HTML),
        one("empty text", subject="Empty", text=""),
        one("odd message id", subject="Odd", text="t", html="<p>h</p>", message_id=ODD_ID),
        one("id with spaces and =?", subject="Id", text="t", message_id="a b =?x?= %/email"),
        one("short id", subject="Id", text="t", message_id="m"),
        one(
            "boundary in a part",
            subject="Clash",
            text=_clash(),
            html="<p>h</p>",
            message_id="clash/email",
        ),
        one("no unsubscribe link", subject="x", text="t", unsubscribe_url=None),
        one(
            "long unsubscribe link",
            subject="x",
            text="t",
            unsubscribe_url="https://journeys.example.com/unsubscribe/" + "t" * 90,
        ),
        one(
            "unsubscribe link of 58 characters",
            subject="x",
            text="t",
            unsubscribe_url="https://e.example/" + "u" * 40,
        ),
        one(
            "non-ASCII unsubscribe link",
            subject="x",
            text="t",
            unsubscribe_url="https://e.example/u?n=Núñez",
        ),
        one("transactional with a link", subject="x", text="t", transactional=True),
        one("naive date", subject="x", text="t", date=datetime(2025, 3, 1, 23, 59, 59)),
        one(
            "date in +05:30",
            subject="x",
            text="t",
            date=datetime(2026, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        ),
        one("date in year 1000", subject="x", text="t", date=datetime(1000, 1, 1, tzinfo=UTC)),
        one("date in year 50", subject="x", text="t", date=datetime(50, 6, 1, tzinfo=UTC)),
        one(
            "mixed-case address with tag",
            subject="x",
            text="t",
            address="Bob.Smith+tag@Example.COM",
        ),
        one("address with a comma", subject="x", text="t", address="a,b@example.com"),
        one("address with a comment", subject="x", text="t", address="x(c)@example.com"),
        one("quoted local part", subject="x", text="t", address='"q.x"@example.com'),
        one("non-ASCII address", subject="x", text="t", address="jörg@exämple.com"),
        one("address without a dot", subject="x", text="t", address="user@localhost"),
        one(
            "address of 80 characters",
            subject="x",
            text="t",
            address="l" * 60 + "@" + "d" * 7 + ".example.com",
        ),
        one("address with angle brackets", subject="x", text="t", address="<a@example.com>"),
        one("address ending in a dot", subject="x", text="t", address="a.@example.com"),
    ]


@pytest.mark.parametrize("extensions", EXTENSIONS, ids=lambda e: "+".join(e) or "none")
@pytest.mark.parametrize("sender", SENDERS)
async def test_deliver_sends_the_bytes_it_sent_before(sender: str, extensions: Any) -> None:
    compared = 0
    for label, message in messages():
        expected = _masked_sent(await reference_send(sender, message, extensions))
        got = _masked_sent(await channel_send(sender, message, extensions))
        assert got == expected, label
        compared += bool(expected[0])
    if "smtputf8" in extensions or sender.isascii():
        assert compared > 20  # most messages did go out (else: SMTPNotSupported, compared)


@pytest.mark.parametrize("encoder", ["stdlib's", "none"])
@pytest.mark.parametrize("sender", SENDERS)
def test_build_flattens_to_the_bytes_it_did_before(
    sender: str, encoder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if encoder == "none":  # a Python without email.contentmanager._encode_text
        monkeypatch.setattr(mime, "_encode_text", None)
    channel = EmailChannel(EmailSettings(sender=sender))
    for label, message in messages():
        for utf8 in (False, True):
            for cte_type in ("8bit", "7bit"):
                random.seed(5)
                expected = flatten_message(
                    reference_build(sender, message), utf8=utf8, cte_type=cte_type
                )
                random.seed(5)
                got = flatten_message(channel.build(message), utf8=utf8, cte_type=cte_type)
                assert _masked(got) == _masked(expected), (label, utf8, cte_type)


async def test_a_different_byte_is_caught() -> None:
    """The comparison sees one byte: a subject one letter apart gives other bytes."""
    sender, extensions = SENDERS[0], EXTENSIONS[0]
    _, message = messages()[1]
    other = Outgoing(
        message.message_id,
        message.addresses,
        {**message.content, "subject": "Your weekly updatE"},
        unsubscribe_url=message.unsubscribe_url,
        date=message.date,
    )
    (sent,), _ = await reference_send(sender, message, extensions)
    (changed,), _ = await channel_send(sender, other, extensions)
    assert sent[2] != changed[2]
    assert len(sent[2]) == len(changed[2])


@pytest.mark.parametrize("utf8", [False, True])
def test_the_unsubscribe_link_is_one_line_never_an_encoded_word(utf8: bool) -> None:
    channel = EmailChannel(EmailSettings(sender=SENDERS[1]))
    seen = 0
    for label, message in messages():
        if message.transactional or not message.unsubscribe_url:
            continue
        data = flatten_message(channel.build(message), utf8=utf8)
        lines = [line for line in data.split(b"\r\n") if line.startswith(b"List-Unsubscribe:")]
        uri = quote(message.unsubscribe_url, safe=string.printable[:94].strip('<>"\\^`{|}'))
        assert lines == [f"List-Unsubscribe: <{uri}>".encode()], label
        assert b"=?" not in lines[0] and len(lines[0]) <= 998, label
        parsed = BytesParser(policy=policy.strict).parsebytes(data)
        assert parsed["List-Unsubscribe"] == f"<{uri}>", label
        seen += 1
    assert seen >= 3  # the short, the long and the non-ASCII link at least
    assert (
        unsubscribe_header("https://e.example/u?n=Núñez")
        == "<https://e.example/u?n=N%C3%BA%C3%B1ez>"
    )


HEADERS = ["Subject", "X-Journeys-Message-Id", "List-Unsubscribe", "Date", "To", "Message-ID"]


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(HEADERS),
    value=st.one_of(
        st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=90),
        st.text(alphabet=' =?<>@.,;:"()[]\\aZ9-_+~', max_size=40),
        st.from_regex(r"[!-~]{1,30}( [!-~]{1,20}){0,4}", fullmatch=True),
        st.from_regex(
            r"[a-z0-9_+-]{1,20}(\.[A-Z0-9-]{1,9})?@[a-z0-9-]{1,30}(\.[a-z]{2,9}){0,3}",
            fullmatch=True,
        ),
        st.from_regex(r"<[0-9a-f]{32}@[a-z0-9-]{1,40}(\.[a-z0-9-]{1,9}){0,2}>", fullmatch=True),
        st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)).map(date_header),
    ),
)
def test_a_value_stored_unparsed_is_the_registry_fold(name: str, value: str) -> None:
    """Where :func:`_verbatim` lets a value skip the registry, the registry folds it to itself."""
    if _verbatim(name, value):
        header = POLICY.header_factory(name, value)
        for generating in (policy.SMTP, policy.SMTPUTF8):
            assert header.fold(policy=generating) == f"{name}: {value}\r\n"


@settings(max_examples=300, deadline=None)
@given(
    address=st.one_of(
        st.from_regex(
            r"[A-Za-z0-9_+-]{1,20}(\.[A-Za-z0-9_+-]{1,9}){0,2}@[A-Za-z0-9-]{1,30}(\.[A-Za-z0-9-]{1,9}){0,3}",
            fullmatch=True,
        ),
        st.text(alphabet='ab.@+-_"(),<>', max_size=20),
    )
)
def test_a_simple_address_is_its_own_envelope(address: str) -> None:
    """Where :func:`simple_address` holds, aiosmtplib's envelope from ``To`` is the address."""
    if simple_address(address):
        mail = EmailMessage()
        mail["To"] = address
        assert extract_recipients(mail) == [address]
