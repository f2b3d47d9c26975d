"""A receiver's check of a sent email, by parsers this project did not write.

Python's ``email`` package with ``policy.strict`` (any defect raises) reads the bytes as
they arrived over SMTP; ``email-validator`` checks the sender's address and the
``Message-ID``'s ``id-left@id-right`` as address syntax. On top of them, what RFC 5322,
RFC 2047, RFC 2369 and RFC 8058 require and the parsers let through: both required fields
once each, lines within 998 characters, CRLF, ASCII headers (no SMTPUTF8 here), the
``List-Unsubscribe`` URI in angle brackets, multipart/alternative text then HTML.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from unittest import mock

import email_validator

__all__ = ["check_email"]

_MSG_ID = re.compile(r"<([^<>@\s]+)@([^<>@\s]+)>")


def _address_syntax(address: str) -> None:
    """Address syntax per email-validator, without DNS.

    Reserved names (``localhost``, ``.invalid``) are refused by email-validator as not
    deliverable, not as bad syntax: its documented switch, the list of them, is emptied.
    """
    with mock.patch.object(email_validator, "SPECIAL_USE_DOMAIN_NAMES", []):
        email_validator.validate_email(
            address, check_deliverability=False, globally_deliverable=False, allow_smtputf8=False
        )


def check_email(raw: bytes) -> EmailMessage:
    """Parse ``raw`` as a strict receiver would; raise AssertionError naming each problem.

    Args:
        raw: the message's bytes as the SMTP server received them.

    Returns:
        The parsed message.

    """
    problems: list[str] = []
    head, _, _ = raw.partition(b"\r\n\r\n")
    lines = raw.split(b"\r\n")
    if any(b"\n" in line or b"\r" in line for line in lines):
        problems.append("a bare LF or CR (RFC 5322 §2.1: lines end in CRLF)")
    if long := [len(line) for line in lines if len(line) > 998]:
        problems.append(f"lines over 998 characters (RFC 5322 §2.1.1): {long}")
    if not head.isascii():
        problems.append("8-bit bytes in the header (RFC 2047 encoded words expected)")
    mail = message_from_bytes(raw, policy=policy.strict)
    assert isinstance(mail, EmailMessage)
    for name in ("Date", "From", "Message-ID"):
        if len(mail.get_all(name) or []) != 1:
            problems.append(f"{name}: expected once, found {len(mail.get_all(name) or [])}")
    for part in mail.walk():
        problems += [f"{part.get_content_type()}: defect {d!r}" for d in part.defects]
        for name, value in part.items():
            problems += [f"{name}: defect {d!r}" for d in getattr(value, "defects", ())]
    if mail["Date"] is not None and parsedate_to_datetime(str(mail["Date"])).tzinfo is None:
        problems.append(f"Date: no zone in {mail['Date']!r}")
    if mail["From"] is not None:
        _address_syntax(mail["From"].addresses[0].addr_spec)
    msg_id = _MSG_ID.fullmatch(str(mail["Message-ID"] or ""))
    if msg_id is None:
        problems.append(f"Message-ID: not <id-left@id-right>: {mail['Message-ID']!r}")
    else:
        _address_syntax(f"{msg_id[1]}@{msg_id[2]}")
    link, post = mail["List-Unsubscribe"], mail["List-Unsubscribe-Post"]
    if link is not None:
        if not re.fullmatch(r"<https?://[!-;=?-~]+>", str(link)):
            problems.append(f"List-Unsubscribe: not one <URI> (RFC 2369): {str(link)!r}")
        if str(post) != "List-Unsubscribe=One-Click":
            problems.append(f"List-Unsubscribe-Post: {post!r} (RFC 8058)")
    elif post is not None:
        problems.append("List-Unsubscribe-Post without List-Unsubscribe (RFC 8058 §3.1)")
    if mail.get_content_type() == "multipart/alternative":
        kinds = [part.get_content_type() for part in mail.iter_parts()]
        if kinds != ["text/plain", "text/html"]:
            problems.append(f"multipart/alternative of {kinds}, expected text then HTML")
    elif mail.get_content_type() != "text/plain":
        problems.append(f"unexpected Content-Type {mail.get_content_type()}")
    assert not problems, "\n".join(problems)
    return mail
