"""Local catchers for ``journeys dev``: every channel without a real provider lands here.

Each catcher is a real server on loopback speaking the provider's protocol — SMTP for email,
Twilio's Messages API for SMS, FCM HTTP v1 (with its OAuth2 token endpoint) for push — so
the channels send exactly as in production; webhooks go to a catcher that records the URL
they were meant for. What a catcher receives is kept in the :class:`~journeys.dev.inbox.Inbox`.

A channel is left alone (sent for real) when its provider is configured:

- email: ``[email] host`` or ``port`` is set (in ``journeys.toml`` or ``JOURNEYS_EMAIL_*``);
- sms: ``[sms] account_sid`` is set;
- push: a service account is set (``service_account_file`` or JOURNEYS_PUSH_SERVICE_ACCOUNT);
- webhook: ``[dev] webhooks = "deliver"`` (the default, ``"catch"``, catches them all).

Another registered channel (:data:`~definitions.channels.CHANNELS`) has no catcher: it is
sent for real, and ``journeys dev`` says so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from activities.channels.base import MESSAGE_ID_HEADER
from definitions.channels import CHANNELS as REGISTERED
from journeys.config import Settings
from journeys.dev.http import LoopbackServer
from journeys.dev.inbox import Inbox, Origin
from journeys.dev.shapes import FcmShape, HttpRequest, Reply, TwilioShape, new_service_account
from journeys.sinks import MailCatcher

if TYPE_CHECKING:
    from journeys.store import Store

__all__ = [
    "CHANNELS",
    "ORIGINAL_URL_HEADER",
    "Catchers",
    "Resolve",
    "caught_channels",
    "origin_in_store",
]

log = logging.getLogger("journeys.dev")

CHANNELS = ("email", "sms", "push", "webhook")
"""The channels with a local catcher."""
ORIGINAL_URL_HEADER = "x-journeys-original-url"
"""The header that tells the webhook catcher which URL a caught webhook was meant for."""
_DEV_NUMBER = "+15005550006"

Resolve = Callable[[str], Origin]
"""Finds the journey, step and recipient of a message id (in the store's message log)."""


def caught_channels(settings: Settings) -> dict[str, str]:
    """The channels ``journeys dev`` catches, and those it does not with the reason why.

    Returns:
        channel → ``""`` when it is caught, else why it is sent for real.

    """
    email = settings.email.model_fields_set & {"host", "port"}
    push = settings.push
    reasons = {
        "email": f"[email] {' and '.join(sorted(email))} set" if email else "",
        "sms": "[sms] account_sid set" if settings.sms.account_sid else "",
        "push": (
            "a service account is set" if push.service_account or push.service_account_file else ""
        ),
        "webhook": '[dev] webhooks = "deliver"' if settings.dev.webhooks == "deliver" else "",
    }
    for name in REGISTERED:
        reasons.setdefault(name, "no local catcher for it")
    return reasons


async def origin_in_store(store: Store, message_id: str) -> Origin:
    """Where a message came from, by the message log and its run (empty when not logged)."""
    message = await store.messages.get(message_id)
    if message is None:
        return Origin()
    run = await store.runs.get(message.run_id)
    return Origin(run.journey if run else None, message.step, message.recipient_id)


def _parse_origin(message_id: str) -> Origin:
    """What a message id says by itself: ``workflow/run/step/channel``."""
    parts = message_id.rsplit("/", 3)
    if len(parts) < 4:
        return Origin()
    journey, _, recipient = parts[0].partition("/")
    return Origin(journey or None, parts[2], recipient or None)


def _lines(text: str) -> str:
    """SMTP's CRLF line ends as the recipient's mail program shows them."""
    return text.replace("\r\n", "\n")


@dataclass
class _Catcher:
    channel: str
    url: str
    what: str
    server: LoopbackServer | MailCatcher


class Catchers:
    """The catchers of the channels not configured with a real provider.

    Args:
        settings: the configuration ``journeys dev`` runs with.
        inbox: where caught messages go.
        resolve: finds where a message came from by its id.

    """

    def __init__(self, settings: Settings, inbox: Inbox, resolve: Resolve | None = None) -> None:
        self.settings = settings
        self.inbox = inbox
        self.resolve = resolve or _parse_origin
        self.reasons = caught_channels(settings)
        self._catchers: dict[str, _Catcher] = {}
        self._twilio = TwilioShape()
        self._fcm: FcmShape | None = None
        self._service_account: dict[str, str] = {}

    @property
    def caught(self) -> list[str]:
        """The channels caught here."""
        return [name for name, reason in self.reasons.items() if not reason]

    def start(self) -> Catchers:
        """Start a catcher for every caught channel (each on a free loopback port)."""
        try:
            for name in self.caught:
                self._catchers[name] = getattr(self, f"_start_{name}")()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every catcher."""
        while self._catchers:
            _, catcher = self._catchers.popitem()
            catcher.server.stop()

    def describe(self) -> list[str]:
        """A line per channel: where it is caught, or why it is sent for real."""
        lines = []
        for name, reason in self.reasons.items():
            if name in self._catchers:
                catcher = self._catchers[name]
                lines.append(f"  {name:<8} caught at {catcher.url} ({catcher.what})")
            else:
                lines.append(f"  {name:<8} sent for real ({reason})")
        return lines

    def url(self, channel: str) -> str | None:
        """Where a channel's catcher listens, if it is caught."""
        catcher = self._catchers.get(channel)
        return catcher.url if catcher else None

    def worker_settings(self) -> Settings:
        """The settings with every caught channel pointed at its catcher."""
        update: dict[str, Any] = {}
        s = self.settings
        if "email" in self._catchers:
            server = self._catchers["email"].server
            update["email"] = s.email.model_copy(
                update={"host": "127.0.0.1", "port": server.port, "security": "none"}
            )
        if "sms" in self._catchers:
            update["sms"] = s.sms.model_copy(
                update={
                    "base_url": self._catchers["sms"].url,
                    "account_sid": self._twilio.account_sid,
                    "auth_token": self._twilio.auth_token,
                    "from_number": s.sms.from_number or _DEV_NUMBER,
                }
            )
        if "push" in self._catchers:
            update["push"] = s.push.model_copy(
                update={
                    "base_url": self._catchers["push"].url,
                    "service_account": json.dumps(self._service_account),
                }
            )
        return s.model_copy(update=update)

    # -- each channel ------------------------------------------------------------------------

    def _origin(self, message_id: str | None) -> Origin:
        if not message_id:
            return Origin()
        try:
            found = self.resolve(message_id)
        except Exception as exc:  # a lookup must never lose the message
            log.warning("inbox: cannot look up %s: %s", message_id, exc)
            found = Origin()
        return found if found != Origin() else _parse_origin(message_id)

    def _start_email(self) -> _Catcher:
        def keep(mail: EmailMessage) -> None:
            text = mail.get_body(("plain",))
            html = mail.get_body(("html",))
            raw_id = mail.get("X-Journeys-Message-Id")
            message_id = "".join(str(raw_id).split()) if raw_id else None  # unfolded
            subject = str(mail.get("Subject", ""))
            self.inbox.add(
                "email",
                str(mail.get("To", "")),
                subject or "(no subject)",
                {
                    "from": str(mail.get("From", "")),
                    "to": str(mail.get("To", "")),
                    "subject": subject,
                    "text": _lines(text.get_content()) if text is not None else None,
                    "html": _lines(html.get_content()) if html is not None else None,
                    "headers": [[k, str(v)] for k, v in mail.items()],
                },
                message_id=message_id,
                origin=self._origin(message_id),
            )

        server = MailCatcher(on_message=keep, keep=False).start()
        return _Catcher("email", f"smtp://127.0.0.1:{server.port}", "SMTP", server)

    def _start_sms(self) -> _Catcher:
        shape = self._twilio

        def handle(request: HttpRequest) -> Reply:
            refused = shape.refusal(request)
            if refused:
                return refused[1]
            problems = shape.problems(request)
            if problems:
                return shape.error(400, 21602, "; ".join(problems))
            form = request.form()
            message_id = request.headers.get(MESSAGE_ID_HEADER)
            self.inbox.add(
                "sms",
                form["To"],
                form["Body"],
                {
                    "from": form.get("From") or form.get("MessagingServiceSid"),
                    "to": form["To"],
                    "body": form["Body"],
                },
                message_id=message_id,
                origin=self._origin(message_id),
            )
            return shape.created(form)

        server = LoopbackServer(handle).start()
        return _Catcher("sms", server.url, "Twilio Messages API", server)

    def _start_push(self) -> _Catcher:
        def handle(request: HttpRequest) -> Reply:
            fcm = self._fcm
            assert fcm is not None  # set before the server starts
            if request.path == fcm.token_path:
                return fcm.token(request)[1]
            refused = fcm.refusal(request)
            if refused:
                return refused[1]
            try:
                message = request.json()["message"]
                token = str(message["token"])
            except (ValueError, KeyError, TypeError):
                return fcm.error(400, "INVALID_ARGUMENT")
            notification = message.get("notification") or {}
            message_id = request.headers.get(MESSAGE_ID_HEADER)
            self.inbox.add(
                "push",
                token,
                str(notification.get("title") or notification.get("body") or "(no title)"),
                {
                    "token": token,
                    "title": notification.get("title"),
                    "body": notification.get("body"),
                    "data": message.get("data") or {},
                },
                message_id=message_id,
                origin=self._origin(message_id),
            )
            return fcm.sent()

        server = LoopbackServer(handle)
        key, self._service_account = new_service_account("journeys-dev", f"{server.url}/token")
        self._fcm = FcmShape("journeys-dev", key, f"{server.url}/token")
        server.start()
        return _Catcher("push", server.url, "FCM HTTP v1", server)

    def _start_webhook(self) -> _Catcher:
        def handle(request: HttpRequest) -> Reply:
            headers = dict(request.headers)
            url = headers.pop(ORIGINAL_URL_HEADER, request.path)
            message_id = headers.pop(MESSAGE_ID_HEADER, None)
            for hop in ("host", "content-length", "accept-encoding", "connection", "user-agent"):
                headers.pop(hop, None)
            try:
                body: Any = request.json()
            except ValueError:
                body = request.body.decode(errors="replace")
            self.inbox.add(
                "webhook",
                url,
                f"POST {url}",
                {"url": url, "method": request.method, "headers": headers, "body": body},
                message_id=message_id,
                origin=self._origin(message_id),
            )
            return 200, {}

        server = LoopbackServer(handle).start()
        return _Catcher("webhook", server.url, "every webhook, with the URL it was for", server)
