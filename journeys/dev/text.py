"""``journeys inbox``: what ``journeys dev`` caught, in the terminal."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from journeys.config import Settings
from journeys.dev.inbox import CaughtMessage, Inbox

__all__ = ["message_text", "run_inbox"]


def _origin(message: CaughtMessage) -> str:
    o = message.origin
    where = "/".join(x for x in (o.journey, o.step) if x)
    return f"{where} ({o.recipient})" if o.recipient else where


def _line(message: CaughtMessage) -> str:
    summary = message.summary if len(message.summary) <= 50 else message.summary[:49] + "…"
    return (
        f"#{message.number:<4} {message.caught_at:%Y-%m-%d %H:%M:%S}  {message.channel:<8} "
        f"{message.address:<28} {summary:<50}  {_origin(message)}"
    ).rstrip()


def message_text(message: CaughtMessage, page_url: str | None = None) -> str:
    """One message in full, as the terminal shows it."""
    o, c = message.origin, message.content
    lines = [
        f"#{message.number} {message.channel}, caught "
        f"{message.caught_at.isoformat(timespec='seconds')}",
        f"  journey:    {o.journey or '-'}",
        f"  step:       {o.step or '-'}",
        f"  recipient:  {o.recipient or '-'}",
        f"  message id: {message.message_id or '-'}",
        f"  to:         {message.address}",
        "",
    ]
    if message.channel == "email":
        lines += [f"From: {c.get('from')}", f"To: {c.get('to')}", f"Subject: {c.get('subject')}"]
        lines += ["", c.get("text") or "(no text part)"]
        if c.get("html") is not None:
            where = f" — see {page_url}/?m={message.number}" if page_url else ""
            lines += ["", f"(and an HTML part of {len(c['html'])} characters{where})"]
    elif message.channel == "sms":
        lines += [f"From: {c.get('from')}", "", str(c.get("body"))]
    elif message.channel == "push":
        lines += [f"Title: {c.get('title')}", f"Body: {c.get('body')}"]
        lines += [f"Data: {json.dumps(c.get('data') or {}, ensure_ascii=False)}"]
    else:
        lines += [f"POST {c.get('url')}"]
        lines += [f"{k}: {v}" for k, v in sorted((c.get("headers") or {}).items())]
        lines += ["", json.dumps(c.get("body"), indent=2, ensure_ascii=False)]
    return "\n".join(lines)


def run_inbox(
    settings: Settings,
    key: str | None = None,
    *,
    as_json: bool = False,
    clear: bool = False,
    out: TextIO | None = None,
) -> int:
    """Print the inbox (or one message, by number or message id); returns the exit code.

    Exits 1, saying why, when ``journeys dev`` never ran here, nothing was caught, or the
    message asked for is not there.
    """
    out = out or sys.stdout
    path = settings.dev.inbox_file
    inbox = Inbox.existing(path)
    if inbox is None:
        print(
            f"journeys inbox: no inbox at {path}: run `journeys dev` in this folder, and the "
            "messages your journeys send land there",
            file=sys.stderr,
        )
        return 1
    if clear:
        print(f"cleared {inbox.clear()} messages from {path}", file=out)
        return 0
    page = f"http://127.0.0.1:{settings.dev.inbox_port}"
    if key is not None:
        message = inbox.get(key)
        if message is None:
            print(f"journeys inbox: no message {key!r} in {path}", file=sys.stderr)
            return 1
        text = json.dumps(message.to_json(), indent=2) if as_json else message_text(message, page)
        print(text, file=out)
        return 0
    messages = inbox.messages()
    if as_json:
        print(json.dumps([m.to_json() for m in messages], indent=2), file=out)
    else:
        for message in messages:
            print(_line(message), file=out)
    if not messages:
        print(f"journeys inbox: nothing caught yet (in {path})", file=sys.stderr)
        return 1
    if not as_json:
        print(
            f"{len(messages)} message{'s' if len(messages) != 1 else ''}; "
            f"`journeys inbox N` shows one, {page} shows them",
            file=out,
        )
    return 0
