"""Header values an email may carry, per RFC 5322, from values the engine does not control.

A message id is any text of the value domain (1 to 255 characters without control
characters, but a line separator or a non-ASCII letter allowed), a rendered subject may hold a
newline, a sender may be an internationalised domain: each is turned here into a header
value that a strict receiver parses back without a defect.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr
from urllib.parse import quote

__all__ = [
    "FALLBACK_DOMAIN",
    "boundary",
    "date_header",
    "message_id_header",
    "one_line",
    "quoted_id",
]

FALLBACK_DOMAIN = "journeys.invalid"
"""The ``Message-ID`` domain when the sender has none usable (RFC 2606 reserves ``invalid``)."""

_ATEXT = re.escape("!#$%&'*+-/=?^_`{|}~")
_DOT_ATOM = re.compile(rf"[A-Za-z0-9{_ATEXT}]+(\.[A-Za-z0-9{_ATEXT}]+)*")
_LITERAL = re.compile(r"\[[!-Z^-~]*\]")  # no-fold-literal, RFC 5322 §3.6.4
_VISIBLE = "".join(c for c in string.printable if c not in "% \t\n\r\x0b\x0c")


def sender_domain(sender: str) -> str:
    """The domain of the sender's address, ASCII (IDNA), as a ``Message-ID`` may hold it.

    Args:
        sender: the ``From`` value, ``Name <local@domain>`` or a bare address.

    """
    _, at, domain = parseaddr(sender)[1].rpartition("@")
    domain = domain.strip().lower()
    if not at:
        return FALLBACK_DOMAIN
    if not _LITERAL.fullmatch(domain):
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return FALLBACK_DOMAIN
    if _DOT_ATOM.fullmatch(domain) or _LITERAL.fullmatch(domain):
        return domain
    return FALLBACK_DOMAIN


def message_id_header(message_id: str, sender: str) -> str:
    """``<hash@domain>``: the same for every attempt at one message, different across messages.

    The left part is the first 128 bits of SHA-256 over the engine's message id, in hex: a
    valid ``id-left`` (dot-atom-text) whatever characters the id holds, of fixed length, and
    saying nothing about the run or the recipient to whoever reads the headers.

    Args:
        message_id: the engine's deterministic message id.
        sender: the ``From`` value; its domain is the right part.

    """
    return f"<{_digest(message_id)}@{sender_domain(sender)}>"


def boundary(message_id: str, parts: list[str]) -> str | None:
    """The MIME boundary of a message's parts, derived from its id like its ``Message-ID``.

    So a retry is the same bytes as the attempt before it (the generator's own boundary is
    random). None, for a random one, in the unlikely case the parts contain it.

    Args:
        message_id: the engine's deterministic message id.
        parts: the text of every part.

    """
    chosen = f"=_journeys_{_digest(message_id)}"
    return None if any(chosen in part for part in parts) else chosen


def _digest(message_id: str) -> str:
    return hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def date_header(when: datetime) -> str:
    """An RFC 5322 ``date-time`` in UTC (``+0000``, not the obsolete ``GMT``).

    Args:
        when: the time; a naive one is taken to be UTC (as the store gives back on SQLite).

    """
    aware = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    return format_datetime(aware.astimezone(UTC))


def one_line(text: str) -> str:
    """Text as one header line: control characters and line breaks become single spaces.

    A rendered subject may hold a newline (from a person's attribute, say); a header may not.
    Non-ASCII stays: the generator encodes it (RFC 2047).
    """
    spaced = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return " ".join(spaced.split())


def quoted_id(message_id: str) -> str:
    """The engine's message id as printable ASCII: ``%`` and everything else percent-encoded.

    ``urllib.parse.unquote`` gives the id back.
    """
    return quote(message_id, safe=_VISIBLE, errors="surrogatepass")
