"""The few HTML pages the server shows to people (not programs): unsubscribing.

Self-contained: styles inline, no script, no image, no font, nothing fetched from
elsewhere, so a page works with JavaScript off and tells no third party that a link was
opened. Every value is escaped. The headers forbid the rest (framing, which would let
another site overlay the button; caching; the token leaking in a ``Referer``).
"""

from __future__ import annotations

from html import escape

from fastapi.responses import HTMLResponse

__all__ = ["PAGE_HEADERS", "confirm_page", "done_page", "error_page", "page"]

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex",
}
"""Headers of every page."""

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f4f5;color:#18181b}"
    "main{max-width:32rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:8px;"
    "box-shadow:0 1px 3px #0003}h1{font-size:1.4rem;margin-top:0}"
    "button{font:inherit;padding:.6rem 1.4rem;border:0;border-radius:6px;background:#b91c1c;"
    "color:#fff;cursor:pointer}.note{color:#52525b;font-size:.9rem}"
)


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A whole page around ``body`` (already HTML; the title is escaped here).

    Args:
        title: the page's title and heading.
        body: the HTML after the heading.
        status: the HTTP status.

    """
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(html, status, headers=PAGE_HEADERS)


def _what(topic: str | None) -> str:
    if topic:
        return f"messages about <strong>{escape(topic)}</strong>"
    return "all marketing messages"


def confirm_page(topic: str | None) -> HTMLResponse:
    """What opening the link shows: what the button would do, and the button.

    The form posts ``List-Unsubscribe=One-Click`` to the page's own URL (no ``action``:
    the token in the query string goes along), exactly what a mail client's one-click
    POST sends (RFC 8058), so both take one path.
    """
    return page(
        "Unsubscribe?",
        f"<p>You will stop receiving {_what(topic)} from us.</p>"
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
        '<p class="note">Nothing has changed yet: only the button unsubscribes. Messages you '
        "need, such as receipts and password resets, still come.</p>",
    )


def done_page(topic: str | None) -> HTMLResponse:
    """What a successful unsubscribe shows."""
    return page(
        "You are unsubscribed",
        f"<p>You are unsubscribed from {_what(topic)}. It may take a moment for messages "
        "already on their way to stop.</p>",
    )


def error_page(status: int, message: str) -> HTMLResponse:
    """A refused link: what went wrong, in words, with the status."""
    return page(
        "This link does not work",
        f'<p>{escape(message)}</p><p class="note">Use the whole link from the email (some '
        "mail programs cut long links short), or the unsubscribe link of a newer email.</p>",
        status,
    )
