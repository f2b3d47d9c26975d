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
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import quote

__all__ = [
    "FALLBACK_DOMAIN",
    "POLICY",
    "Verbatim",
    "boundary",
    "date_header",
    "fixed_header",
    "message_id_header",
    "one_line",
    "quoted_id",
    "set_header",
    "simple_address",
    "unsubscribe_header",
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


class _Registry(HeaderRegistry):
    """The standard header registry, making each header class once, not on every header.

    ``HeaderRegistry`` creates a new class (``type(...)``) for every header it parses,
    which costs more than the parse of a short value; the classes it makes depend on the
    header's name alone.
    """

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._classes.get(key)
        if made is None:
            made = self._classes[key] = super().__getitem__(name)
        return made


POLICY = policy.default.clone(header_factory=_Registry())
"""``email.policy.default`` with :class:`_Registry`: the same messages, the same bytes."""

_MAX_LINE = 78
"""The line length of the policies aiosmtplib generates with (``SMTP``, ``SMTPUTF8``)."""

_PLAIN_TEXT = re.compile(r"[!-~]+( [!-~]+)*")
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9_+-]+(\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
_PLAIN_MSG_ID = re.compile(r"<[0-9a-f]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*>")
_PLAIN_DATE = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} [1-9]\d{3} \d\d:\d\d:\d\d \+0000")
_UNSTRUCTURED = frozenset(
    {"subject", "x-journeys-message-id", "list-unsubscribe", "list-unsubscribe-post"}
)


def simple_address(address: str) -> bool:
    """Whether ``address`` is a plain ``local@domain`` (dot-atoms of letters, digits, ``_+-``).

    Such an address is the one address its ``To`` header holds, written out as it is, and
    the envelope recipient aiosmtplib takes from that header.
    """
    return _PLAIN_ADDRESS.fullmatch(address) is not None


def _verbatim(name: str, value: str) -> bool:
    """Whether the header registry folds ``name: value`` back to itself on one line.

    True only for printable ASCII on one line of at most 78 characters, in forms that
    parse back to themselves: unstructured text with single spaces only and no
    RFC 2047 ``=?`` (an encoded word would be decoded), an RFC 5322 date in UTC as
    :func:`date_header` writes it, a plain address, a ``Message-ID`` as
    :func:`message_id_header` writes it.
    """
    if len(name) + 2 + len(value) > _MAX_LINE:
        return False
    key = name.lower()
    if key in _UNSTRUCTURED:
        return _PLAIN_TEXT.fullmatch(value) is not None and "=?" not in value
    if key == "date":
        return _PLAIN_DATE.fullmatch(value) is not None
    if key == "to":
        return simple_address(value)
    if key == "message-id":
        return _PLAIN_MSG_ID.fullmatch(value) is not None
    return False


class Verbatim(str):
    """A header value the generator writes out as it is (see :func:`fixed_header`)."""

    __slots__ = ()


def fixed_header(name: str, value: str) -> Verbatim | BaseHeader:
    """A header value to give :func:`set_header` for every message, prepared once.

    The value itself when the generator writes it out as it is, whichever policy
    aiosmtplib picks; else the registry's parse of it, which the message stores as it is
    (the fold, done by the generator, does not change a header object).
    """
    header = POLICY.header_factory(name, value)
    lines = {header.fold(policy=p) for p in (policy.SMTP, policy.SMTPUTF8)}
    return Verbatim(value) if lines == {f"{name}: {value}\r\n"} else header


_LINE_LIMIT = 998
"""RFC 5322's limit on a line, CRLF not counted."""


def unsubscribe_header(url: str) -> str:
    """The ``List-Unsubscribe`` value for a link: ``<URI>`` (RFC 2369).

    A character a URI may not hold as it is (non-ASCII, a space, a control, ``<>"``) is
    percent-encoded, as an IRI becomes a URI (RFC 3987): mail clients read the header
    as it is, never an RFC 2047 encoded word.
    """
    return f"<{quote(url, safe=_URI_SAFE, errors='surrogatepass')}>"


_URI_SAFE = "".join(ch for ch in string.printable[:94] if ch not in '<>"\\^`{|}')
"""Printable ASCII a URI holds as it is (``%`` too: what is encoded stays so)."""


class Unfolded(str):
    """A header written out as it is on one line, never RFC 2047-encoded.

    For ``List-Unsubscribe``: its ``<URI>`` must reach the mail client intact, and the
    registry's fold turns a value longer than a line (most unsubscribe links with a
    token) into an encoded word. The message stores an object with the header's
    ``name`` as it is, and the generator asks it for its ``fold``.
    """

    __slots__ = ("name",)
    name: str

    def __new__(cls, name: str, value: str) -> Unfolded:
        """The header ``name: value``."""
        made = super().__new__(cls, value)
        made.name = name
        return made

    def fold(self, *, policy: policy.Policy) -> str:
        """The header's line, as the generator asks a header object for it."""
        return f"{self.name}: {self}{policy.linesep}"


def set_header(mail: EmailMessage, name: str, value: str | BaseHeader) -> None:
    """Add a header to ``mail``: unparsed when the generator would write it out as it is.

    ``mail[name] = value`` parses the value with the header registry, and the generator
    folds the parse back into text. For a value that folds back to itself
    (:func:`_verbatim`), storing it unparsed (``set_raw``) writes the very same bytes
    without either step; any other value goes through the registry.
    """
    if isinstance(value, BaseHeader):
        mail[name] = value  # parsed already: stored as it is
    elif (
        name.lower() == "list-unsubscribe"
        and _PLAIN_TEXT.fullmatch(value)
        and len(name) + 2 + len(value) <= _LINE_LIMIT
    ):
        mail[name] = Unfolded(name, value)
    elif isinstance(value, Verbatim) or _verbatim(name, value):
        mail.set_raw(name, str(value))
    else:
        mail[name] = value
