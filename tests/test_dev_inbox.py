"""``journeys dev``'s catchers and the developer inbox, without a Temporal server.

The real channels send to the catchers exactly as they send to providers: SMTP to the mail
catcher, Twilio's and FCM's shapes to their stand-ins, webhooks (built and signed as in
production) to the webhook catcher with the URL they were for.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.channels import EmailChannel, Outgoing, PushChannel, SmsChannel
from definitions.errors import InvalidAddressError, PermanentDeliveryError
from journeys.config import Settings
from journeys.dev.catchers import Catchers, caught_channels
from journeys.dev.inbox import Inbox, Origin
from journeys.dev.page import render_page
from journeys.dev.text import run_inbox
from journeys.dev.webhooks import CaughtWebhookChannel

MESSAGE_ID = "onboarding/u42/run-1/welcome/email"


def settings(raw: dict[str, object] | None = None, tmp: Path | None = None) -> Settings:
    data: dict[str, object] = dict(raw or {})
    if tmp is not None:
        data.setdefault("dev", {"inbox_file": str(tmp / "inbox.db")})
    return Settings.model_validate(data)


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    return Inbox(tmp_path / ".journeys" / "inbox.db")


@pytest.fixture
def catchers(inbox: Inbox) -> Iterator[Catchers]:
    looked_up: list[str] = []

    def resolve(message_id: str) -> Origin:
        looked_up.append(message_id)
        return Origin("onboarding", message_id.split("/")[-2], "u42")

    started = Catchers(Settings(), inbox, resolve).start()
    try:
        yield started
    finally:
        started.stop()


# -- the inbox's store -------------------------------------------------------------------------


def test_the_inbox_keeps_messages_newest_first_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "state" / "inbox.db"
    first = Inbox(path)  # the folder is made
    first.add("email", "ana@example.com", "Hello", {"subject": "Hello"}, message_id=MESSAGE_ID)
    first.add("sms", "+14155550100", "Hi", {"body": "Hi"}, origin=Origin("j", "s", "r"))
    again = Inbox.existing(path)  # another process, or after a restart
    assert again is not None
    assert [m.summary for m in again.messages()] == ["Hi", "Hello"]
    assert again.get(1) is not None and again.get("1").channel == "email"  # type: ignore[union-attr]
    assert again.get(MESSAGE_ID).number == 1  # type: ignore[union-attr]
    assert again.get("no/such/id") is None and again.get(99) is None
    assert again.get(2).origin == Origin("j", "s", "r")  # type: ignore[union-attr]
    as_json = again.get(1).to_json()  # type: ignore[union-attr]
    assert as_json["message_id"] == MESSAGE_ID and as_json["journey"] is None
    assert again.count() == 2 and again.clear() == 2 and again.messages() == []
    assert Inbox.existing(tmp_path / "nowhere.db") is None


# -- which channels are caught -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("description", "raw", "sent_for_real"),
    [
        ("nothing configured: all caught", {}, {}),
        ("an SMTP server named", {"email": {"host": "smtp.acme.example"}}, {"email": "host"}),
        ("only the port", {"email": {"port": 2525}}, {"email": "port"}),
        ("the default host said out loud", {"email": {"host": "localhost"}}, {"email": "host"}),
        ("a Twilio account", {"sms": {"account_sid": "AC1"}}, {"sms": "account_sid"}),
        (
            "an FCM key file",
            {"push": {"service_account_file": "/run/fcm.json"}},
            {"push": "service account"},
        ),
        ("webhooks delivered", {"dev": {"webhooks": "deliver"}}, {"webhook": "deliver"}),
        ("sms settings without an account", {"sms": {"from_number": "+15005550006"}}, {}),
    ],
)
def test_a_channel_is_caught_unless_its_provider_is_configured(
    description: str, raw: dict[str, object], sent_for_real: dict[str, str]
) -> None:
    reasons = caught_channels(settings(raw))
    for channel, reason in reasons.items():
        if channel in sent_for_real:
            assert sent_for_real[channel] in reason, description
        else:
            assert reason == "", description


def test_startup_lines_say_where_each_channel_goes(inbox: Inbox) -> None:
    chosen = settings({"email": {"host": "smtp.acme.example"}, "dev": {"webhooks": "deliver"}})
    started = Catchers(chosen, inbox).start()
    try:
        lines = "\n".join(started.describe())
        assert "email    sent for real ([email] host set)" in lines
        assert 'webhook  sent for real ([dev] webhooks = "deliver")' in lines
        assert f"sms      caught at {started.url('sms')} (Twilio Messages API)" in lines
        assert started.url("email") is None and started.caught == ["sms", "push"]
        worker = started.worker_settings()
        assert worker.email.host == "smtp.acme.example"  # left alone
        assert worker.sms.base_url == started.url("sms")
    finally:
        started.stop()


# -- each catcher, reached by the real channel ---------------------------------------------------


async def test_email_is_caught_over_smtp_with_both_parts(catchers: Catchers, inbox: Inbox) -> None:
    channel = EmailChannel(catchers.worker_settings().email)
    html = "<h1>Welcome, Ana!</h1><p>Your <b>pro</b> account is ready.</p>"
    await channel.deliver(
        Outgoing(
            MESSAGE_ID,
            ["ana@example.com"],
            {"subject": "Welcome to Acme", "text": "Welcome, Ana!\n", "html": html},
        )
    )
    await channel.close()
    [mail] = inbox.messages()
    assert (mail.channel, mail.address, mail.summary) == (
        "email",
        "ana@example.com",
        "Welcome to Acme",
    )
    assert mail.message_id == MESSAGE_ID  # folded by SMTP, unfolded again
    assert mail.origin == Origin("onboarding", "welcome", "u42")
    assert mail.content["text"] == "Welcome, Ana!\n"
    assert mail.content["html"].strip() == html
    assert ["X-Journeys-Message-Id", MESSAGE_ID] in [
        [k, "".join(v.split())] for k, v in mail.content["headers"]
    ]


async def test_sms_is_caught_in_twilio_shape(catchers: Catchers, inbox: Inbox) -> None:
    channel = SmsChannel(catchers.worker_settings().sms)
    delivery = await channel.deliver(
        Outgoing("j/u42/run-1/hello/sms", ["+14155550100"], {"body": "Hi Ana"})
    )
    await channel.close()
    assert delivery.provider_id and delivery.provider_id.startswith("SM")
    [sms] = inbox.messages()
    assert sms.content == {"from": "+15005550006", "to": "+14155550100", "body": "Hi Ana"}
    assert sms.message_id == "j/u42/run-1/hello/sms" and sms.origin.step == "hello"


async def test_a_request_out_of_twilio_shape_is_refused_as_twilio_would(
    catchers: Catchers, inbox: Inbox
) -> None:
    wrong = catchers.worker_settings().sms.model_copy(update={"auth_token": "wrong"})
    channel = SmsChannel(wrong)
    with pytest.raises(PermanentDeliveryError, match="401"):
        await channel.deliver(Outgoing("m", ["+14155550100"], {"body": "x"}))
    await channel.close()
    assert inbox.messages() == []


async def test_push_is_caught_in_fcm_shape_with_an_oauth_token(
    catchers: Catchers, inbox: Inbox
) -> None:
    channel = PushChannel(catchers.worker_settings().push)
    delivery = await channel.deliver(
        Outgoing(
            "j/u42/run-1/nudge/push",
            ["token-a", "token-b"],
            {"title": "Hello", "body": "World", "data": {"screen": "home"}},
        )
    )
    await channel.close()
    assert delivery.detail == {"devices": 2, "delivered": 2}
    pushes = inbox.messages()
    assert [p.address for p in pushes] == ["token-b", "token-a"]
    assert pushes[0].content == {
        "token": "token-b",
        "title": "Hello",
        "body": "World",
        "data": {"screen": "home"},
    }
    assert pushes[0].message_id == "j/u42/run-1/nudge/push"


async def test_webhooks_are_caught_with_the_url_they_were_for(
    catchers: Catchers, inbox: Inbox
) -> None:
    catcher_url = catchers.url("webhook")
    assert catcher_url
    channel = CaughtWebhookChannel(
        settings().webhook.model_copy(update={"secret": "whsec_" + "A" * 32}),
        catcher_url=catcher_url,
    )
    # Loopback is caught like any URL: nothing is sent there.
    url = "http://localhost:3000/hooks/signup"
    assert channel.addresses({}, type("Step", (), {"url": url})(), str) == [url]
    await channel.deliver(
        Outgoing(
            "j/u42/run-1/crm/webhook",
            [url],
            {"body": {"event": "signup", "user": "u42"}},
            {"authorization": "Bearer app-token"},
        )
    )
    with pytest.raises(InvalidAddressError, match="scheme 'ftp'"):
        channel.addresses({}, type("Step", (), {"url": "ftp://x.example/"})(), str)
    await channel.close()
    [hook] = inbox.messages()
    assert hook.address == url and hook.summary == f"POST {url}"
    assert hook.content["body"] == {"event": "signup", "user": "u42"}
    headers = hook.content["headers"]
    assert headers["authorization"] == "Bearer app-token"
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-signature"].startswith("v1,")
    assert "x-journeys-original-url" not in headers and "x-journeys-message-id" not in headers
    assert hook.message_id == "j/u42/run-1/crm/webhook" and hook.origin.step == "crm"


def test_a_failing_lookup_still_keeps_the_message(inbox: Inbox) -> None:
    def broken(message_id: str) -> Origin:
        raise TimeoutError("store busy")

    started = Catchers(Settings(), inbox, broken)
    origin = started._origin("onboarding/u42/run-1/welcome/email")
    assert origin == Origin("onboarding", "welcome", "u42")  # read from the id itself


# -- journeys inbox --------------------------------------------------------------------------------


def test_journeys_inbox_lists_shows_and_says_when_there_is_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = settings(tmp=tmp_path)
    assert run_inbox(chosen) == 1
    assert "no inbox at" in capsys.readouterr().err
    inbox = Inbox(chosen.dev.inbox_file)
    assert run_inbox(chosen) == 1
    assert "nothing caught yet" in capsys.readouterr().err
    inbox.add(
        "email",
        "ana@example.com",
        "Welcome",
        {"subject": "Welcome", "from": "a@b", "to": "ana@example.com", "text": "Hi", "html": "<p>"},
        message_id=MESSAGE_ID,
        origin=Origin("onboarding", "welcome", "u42"),
    )
    inbox.add("sms", "+14155550100", "Hi", {"from": "+1500", "to": "+14155550100", "body": "Hi"})
    out = io.StringIO()
    assert run_inbox(chosen, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("#2") and "sms" in lines[0]
    assert "onboarding/welcome (u42)" in lines[1]
    out = io.StringIO()
    assert run_inbox(chosen, MESSAGE_ID, out=out) == 0
    shown = out.getvalue()
    for part in ("journey:    onboarding", f"message id: {MESSAGE_ID}", "Subject: Welcome", "Hi"):
        assert part in shown
    out = io.StringIO()
    assert run_inbox(chosen, as_json=True, out=out) == 0
    assert [m["number"] for m in json.loads(out.getvalue())] == [2, 1]
    assert run_inbox(chosen, "7") == 1
    assert "no message '7'" in capsys.readouterr().err
    assert run_inbox(chosen, clear=True, out=io.StringIO()) == 0
    assert inbox.count() == 0


def test_the_page_escapes_everything(inbox: Inbox) -> None:
    inbox.add(
        "email",
        "<b>@x",
        "<script>alert(1)</script>",
        {
            "subject": "<script>alert(1)</script>",
            "html": '<p onclick="x()">"hi" & bye</p>',
            "text": "</pre><script>",
            "headers": [["X-Evil", "<img src=x>"]],
        },
    )
    page = render_page(inbox)
    assert "<script>" not in page and "<img src=x>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'srcdoc="&lt;p onclick=&quot;x()&quot;&gt;&quot;hi&quot; &amp; bye&lt;/p&gt;"' in page
    assert "<iframe id=html sandbox " in page


def test_dev_port_points_clients_at_the_dev_server() -> None:
    assert settings({"dev": {"port": 17233}}).temporal.address == "localhost:17233"
    explicit = settings({"dev": {"port": 17233}, "temporal": {"address": "temporal:7233"}})
    assert explicit.temporal.address == "temporal:7233"
    assert Settings().temporal.address == "localhost:7233"


async def test_where_a_message_came_from_is_read_from_the_message_log(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from journeys.dev.catchers import origin_in_store
    from journeys.store import MessageRecord, RunRecord, Store

    store = await Store.open(f"sqlite:///{tmp_path}/store.db")
    try:
        # A recipient of a cohort: the workflow id is the cohort's, not journey/recipient.
        workflow, run = "newsletter/trg_1/cohort-1", "member-run-7"
        await store.runs.add(
            RunRecord(workflow, run, "newsletter", "u7", "trg_1", datetime.now(UTC), member=True)
        )
        message_id = f"{workflow}/{run}/hello/email"
        await store.messages.save(
            MessageRecord(message_id, workflow, run, "hello", "u7", "email", "sending")
        )
        assert await origin_in_store(store, message_id) == Origin("newsletter", "hello", "u7")
        assert await origin_in_store(store, "not/logged/run/step/email") == Origin()
    finally:
        await store.close()


def test_a_busy_inbox_port_is_a_clear_error_before_anything_starts(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "journeys", "dev"],
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "JOURNEYS_DEV_INBOX_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert result.returncode == 1
    assert f"journeys: [dev] inbox_port {port}: cannot listen on it" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / ".journeys" / "temporal.log").exists()  # Temporal never started
