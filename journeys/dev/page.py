"""The developer inbox page: what ``journeys dev`` caught, each message as its recipient sees it.

``GET /`` lists the messages newest first and shows one (``/?m=NUMBER``, the newest by
default): an email's HTML in a sandboxed frame (no scripts, no forms, no access to this page)
beside its text part and headers; an SMS; a push notification's title, body and data; a
webhook's headers and JSON body. ``GET /api/messages`` and ``/api/messages/NUMBER`` give the
same as JSON. Everything shown is escaped; the page loads nothing from anywhere else.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from journeys.dev.http import ThreadedServer
from journeys.dev.inbox import CaughtMessage, Inbox

__all__ = ["InboxPage", "render_page"]

_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: http: https:; "
    "frame-ancestors 'none'; form-action 'none'; base-uri 'none'"
)

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
header{background:#24292f;
  color:#fff;
  padding:10px 18px;
  display:flex;
  gap:16px;
  align-items:baseline}
header h1{font-size:17px;margin:0}
header a{color:#c9d1d9}
main{display:grid;grid-template-columns:minmax(280px,32%) 1fr;min-height:calc(100vh - 44px)}
nav{border-right:1px solid #d0d7de;background:#fff;overflow:auto}
nav a{display:block;
  padding:9px 14px;
  border-bottom:1px solid #eaeef2;
  color:inherit;
  text-decoration:none}
nav a.on{background:#ddf4ff}
nav .sum{font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
nav .meta,.meta{color:#57606a;font-size:12px}
.ch{display:inline-block;
  font-size:11px;
  padding:0 6px;
  border-radius:9px;
  background:#eaeef2;
  margin-right:6px}
.ch.email{background:#ddf4ff}
.ch.sms{background:#dafbe1}
.ch.push{background:#fff8c5}
.ch.webhook{background:#fbefff}
section{padding:16px 22px;overflow:auto}
dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0 0 14px}
dt{color:#57606a}
dd{margin:0;word-break:break-all}
h2{font-size:19px;margin:0 0 10px}
h3{font-size:13px;margin:18px 0 6px;color:#57606a}
iframe{width:100%;height:260px;border:1px solid #d0d7de;background:#fff}
pre{background:#fff;
  border:1px solid #d0d7de;
  padding:10px;
  white-space:pre-wrap;
  word-break:break-word;
  margin:0}
.bubble{background:#dafbe1;
  border-radius:14px;
  padding:10px 14px;
  max-width:420px;
  white-space:pre-wrap}
.notification{background:#fff;
  border:1px solid #d0d7de;
  border-radius:10px;
  padding:10px 14px;
  max-width:420px}
table{border-collapse:collapse}
td{border:1px solid #d0d7de;padding:3px 8px;vertical-align:top;word-break:break-all}
.empty{padding:40px;color:#57606a}
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _table(pairs: Sequence[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>" if rows else "<p class=meta>none</p>"


def _row(message: CaughtMessage, current: int | None) -> str:
    on = " class=on" if message.number == current else ""
    where = " · ".join(x for x in (message.origin.journey, message.origin.step) if x)
    return (
        f'<a href="/?m={message.number}"{on} data-number="{message.number}">'
        f'<div class=sum><span class="ch {_e(message.channel)}">{_e(message.channel)}</span>'
        f"{_e(message.summary)}</div>"
        f"<div class=meta>{_e(message.address)}{' · ' + _e(where) if where else ''} · "
        f"{message.caught_at:%H:%M:%S}</div></a>"
    )


def _body(message: CaughtMessage) -> str:
    c = message.content
    if message.channel == "email":
        html = c.get("html")
        frame = (
            f'<iframe id=html sandbox title="the email as HTML" srcdoc="{_e(html)}"></iframe>'
            if html is not None
            else "<p class=meta>no HTML part</p>"
        )
        text = c.get("text")
        text_part = (
            f"<pre id=text>{_e(text)}</pre>" if text is not None else "<p class=meta>none</p>"
        )
        headers = _table([(k, v) for k, v in c.get("headers") or []])
        return (
            f"<h2 id=subject>{_e(c.get('subject'))}</h2>"
            f"<p class=meta>from {_e(c.get('from'))} to {_e(c.get('to'))}</p>"
            f"<h3>HTML</h3>{frame}<h3>Text</h3>{text_part}"
            f"<details><summary>Headers</summary>{headers}</details>"
        )
    if message.channel == "sms":
        return (
            f"<p class=meta>from {_e(c.get('from'))} to {_e(c.get('to'))}</p>"
            f"<div class=bubble id=sms>{_e(c.get('body'))}</div>"
        )
    if message.channel == "push":
        data = c.get("data") or {}
        return (
            f"<p class=meta>to device {_e(c.get('token'))}</p>"
            f"<div class=notification id=push><strong>{_e(c.get('title'))}</strong>"
            f"<div>{_e(c.get('body'))}</div></div>"
            f"<h3>Data</h3>{_table(sorted(data.items()))}"
        )
    body = json.dumps(c.get("body"), indent=2, ensure_ascii=False)
    return (
        f"<h2>POST {_e(c.get('url'))}</h2>"
        f"<h3>Headers</h3>{_table(sorted((c.get('headers') or {}).items()))}"
        f"<h3>Body</h3><pre id=webhook-body>{_e(body)}</pre>"
    )


def _detail(message: CaughtMessage) -> str:
    o = message.origin
    facts = [
        ("journey", o.journey),
        ("step", o.step),
        ("recipient", o.recipient),
        ("message id", message.message_id),
        ("channel", message.channel),
        ("to", message.address),
        ("caught", message.caught_at.isoformat(timespec="seconds")),
    ]
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v) if v else '—'}</dd>" for k, v in facts)
    return f"<section id=message><dl>{dl}</dl>{_body(message)}</section>"


def render_page(inbox: Inbox, number: int | None = None) -> str:
    """The page: the list, and one message (``number``, or the newest)."""
    messages = inbox.messages()
    shown = inbox.get(number) if number is not None else (messages[0] if messages else None)
    current = shown.number if shown else None
    if messages:
        listing = "".join(_row(m, current) for m in messages)
        detail = _detail(shown) if shown else "<p class=empty>no such message</p>"
    else:
        listing = ""
        detail = (
            "<p class=empty>Nothing caught yet. Messages your journeys send while "
            "<code>journeys dev</code> runs appear here.</p>"
        )
    count = inbox.count()
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>journeys inbox</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<header><h1>journeys inbox</h1><span id=count>{count} "
        f"message{'s' if count != 1 else ''}</span><a href=/>refresh</a></header>"
        f"<main><nav id=list>{listing}</nav>{detail}</main></body></html>"
    )


class InboxPage(ThreadedServer):
    """Serves the inbox page on ``127.0.0.1:port``.

    Args:
        inbox: the caught messages.
        port: the port (``[dev] inbox_port``).

    """

    def __init__(self, inbox: Inbox, *, port: int) -> None:
        self.inbox = inbox
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/":
                    query = parse_qs(url.query)
                    raw = (query.get("m") or [""])[0]
                    number = int(raw) if raw.isdigit() else None
                    self._send(200, "text/html", render_page(page.inbox, number))
                elif url.path == "/api/messages":
                    items = [m.to_json() for m in page.inbox.messages()]
                    self._send(200, "application/json", json.dumps(items))
                elif url.path.startswith("/api/messages/"):
                    found = page.inbox.get(url.path.rsplit("/", 1)[1])
                    if found is None:
                        self._send(404, "application/json", '{"error": "no such message"}')
                    else:
                        self._send(200, "application/json", json.dumps(found.to_json()))
                else:
                    self._send(404, "text/plain", "not found")

            def _send(self, status: int, kind: str, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("content-type", f"{kind}; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                self.send_header("content-security-policy", _CSP)
                self.send_header("x-content-type-options", "nosniff")
                self.send_header("cache-control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(Handler, port=port)
