"""An email's MIME body as ``set_content`` and ``add_alternative`` make it, for less CPU.

``EmailMessage.set_content`` parses ``Content-Type`` twice and the other content headers
once per part, on every message, though they take a handful of values. Here each of
those headers is parsed once and the header object shared (the message stores it as it
is; nothing changes a header object), the payload encoded by the standard library's own
encoder, and the parts put together as ``add_alternative`` does: the same message, so
the same bytes. Where Python lacks that encoder, or a body is not text, the standard
calls do the work.
"""

from __future__ import annotations

from collections.abc import Callable
from email import contentmanager
from email.headerregistry import BaseHeader
from email.message import EmailMessage
from functools import cache
from typing import Any, cast

from .headers import POLICY

__all__ = ["set_body"]

_encode_text: Callable[[str, str, str | None, Any], tuple[str, str]] | None = getattr(
    contentmanager, "_encode_text", None
)


@cache
def _header(name: str, value: str) -> BaseHeader:
    return cast(BaseHeader, POLICY.header_factory(name, value))


def _text_part(part: EmailMessage, subtype: str, body: str) -> None:
    """``part.set_content(body, subtype=subtype)`` on a new part, less the ``MIME-Version``."""
    assert _encode_text is not None
    cte, payload = _encode_text(body, "utf-8", None, part.policy)
    part["Content-Type"] = _header("Content-Type", f'text/{subtype}; charset="utf-8"')
    part.set_payload(payload)
    part["Content-Transfer-Encoding"] = _header("Content-Transfer-Encoding", cte)


def set_body(mail: EmailMessage, text: object, html: object, boundary: str | None) -> None:
    """Give ``mail`` its body: ``text`` (None: empty), then ``html`` as an alternative.

    The same as ``mail.set_content(text or "")``, then, with ``html``,
    ``mail.add_alternative(html, subtype="html")`` and ``mail.set_boundary(boundary)``
    unless ``boundary`` is None (the generator then picks one).

    Args:
        mail: a message of :data:`.headers.POLICY` with no content yet.
        text: the text part.
        html: the HTML part, or None for a text-only message.
        boundary: the multipart boundary.

    """
    text = text if text is not None else ""
    if _encode_text is None or not isinstance(text, str) or not isinstance(html, str | None):
        mail.set_content(text)
        if html is not None:
            mail.add_alternative(html, subtype="html")
            if boundary:
                mail.set_boundary(boundary)
        return
    version = _header("MIME-Version", "1.0")
    if html is None:
        _text_part(mail, "plain", text)
        mail["MIME-Version"] = version
        return
    plain, rich = EmailMessage(policy=POLICY), EmailMessage(policy=POLICY)
    _text_part(plain, "plain", text)
    _text_part(rich, "html", html)
    rich["MIME-Version"] = version
    mail["MIME-Version"] = version
    if boundary:
        mail["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
    else:
        mail["Content-Type"] = _header("Content-Type", "multipart/alternative")
    mail.attach(plain)
    mail.attach(rich)
