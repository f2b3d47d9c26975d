"""Multi-channel delivery through whole journeys: fallback, preferences, exactly-once."""

from __future__ import annotations

from typing import Any

from journeys import MessageRecord, RunStatus
from journeys.consent import sign_unsubscribe, verify_unsubscribe
from journeys.report import run_text
from tests.conftest import SIGNING_SECRET
from tests.helpers import Engine
from tests.mailcheck import check_email

MULTI_TEMPLATE = """
email:
  subject: "Hello {{ customer.first_name | default: 'you' }}"
  text: "Unsubscribe: {{ journey.unsubscribe_url }}"
sms:
  body: "Hi {{ customer.first_name | default: 'you' }}"
push:
  title: Hello
  body: "Hi {{ customer.first_name | default: 'you' }}"
"""


def journey(engine: Engine, name: str, send: str, extra: str = "") -> None:
    engine.write("templates/multi", MULTI_TEMPLATE)
    engine.write(
        name,
        f"journey: {name}\n{extra}steps:\n  - send: note\n    template: multi\n"
        + "".join(f"    {line}\n" for line in send.strip().splitlines()),
    )


def send_entry(status: RunStatus) -> Any:
    [entry] = [e for e in status.timeline if e.kind == "send"]
    return entry


def attempts(status: RunStatus) -> list[tuple[str, str, str]]:
    return [
        (a["channel"], a["state"], a.get("reason", ""))
        for a in send_entry(status).detail["attempts"]
    ]


async def run(engine: Engine, name: str, person: dict[str, Any]) -> RunStatus:
    handle = await engine.client.trigger(name, [person])
    return await engine.until_done(handle.run_id)


async def test_fallback_past_missing_addresses(engine: Engine) -> None:
    journey(engine, "fb", "channel: sms\nfallback: [push, email]")
    status = await run(engine, "fb", {"id": "f1", "email": "f1@example.com"})
    assert attempts(status) == [
        ("sms", "skipped", "no address"),
        ("push", "skipped", "no address"),
        ("email", "sent", ""),
    ]
    assert send_entry(status).outcome == "sent"
    assert send_entry(status).detail["channel"] == "email"
    assert (
        "attempts: sms skipped (no address) · push skipped (no address) · email sent"
        in run_text(status)
    )
    assert [m["To"] for m in engine.mail.messages] == ["f1@example.com"]


async def test_fallback_past_opt_out_and_unregistered_tokens(engine: Engine) -> None:
    assert engine.fcm is not None
    engine.fcm.unregistered = {"old-phone"}
    await engine.client.update_preferences("f2", channels={"sms": True})
    journey(engine, "fb", "channel: sms\nfallback: [push, email]")
    status = await run(
        engine,
        "fb",
        {
            "id": "f2",
            "phone": "07911 123456",
            "email": "f2@example.com",
            "devices": [{"token": "old-phone", "platform": "ios"}],
        },
    )
    assert attempts(status) == [
        ("sms", "skipped", "opted out of sms"),
        ("push", "failed", "every device token is unregistered"),
        ("email", "sent", ""),
    ]
    assert engine.twilio is not None and engine.twilio.sent == []
    profile = await engine.client.store.profiles.get("f2")
    assert profile is not None and "devices" not in profile  # the dead token is gone


async def test_unregistered_tokens_are_removed_wherever_they_were_added(engine: Engine) -> None:
    """One device model: add_device's tokens and a profile's ``devices`` are the same list."""
    assert engine.fcm is not None
    engine.fcm.unregistered = {"added-dead", "given-dead"}
    await engine.client.add_device("ud", "added-dead", "android")
    await engine.client.add_device("ud", "added-live", "ios")
    journey(engine, "pu", "channel: push")
    given = [{"token": "given-dead", "platform": "ios"}, "given-live"]
    first = await run(engine, "pu", {"id": "ud", "devices": given})
    assert send_entry(first).outcome == "sent"
    person = await engine.client.person("ud")
    assert "devices" not in person.attributes
    assert sorted(d["token"] for d in person.devices) == ["added-live", "given-live"]
    assert (await engine.client.export_person("ud"))["devices"] == person.devices
    second = await run(engine, "pu", {"id": "ud"})  # the next push: live tokens only
    [message] = [
        m for m in await engine.client.messages(recipient="ud") if m.run_id == second.run_id
    ]
    assert message.state == "sent" and message.address == "added-live, given-live"
    assert sorted(m["token"] for m in engine.fcm.sent) == [
        "added-live",
        "added-live",
        "given-live",
        "given-live",
    ]


async def test_fallback_past_a_permanent_provider_rejection(engine: Engine) -> None:
    assert engine.twilio is not None and engine.fcm is not None
    engine.twilio.invalid = {"+447911123456": 21610}
    journey(engine, "fb", "channel: sms\nfallback: [push]")
    status = await run(
        engine, "fb", {"id": "f3", "phone": "+44 7911 123456", "devices": ["tablet-token"]}
    )
    [(sms, sms_state, sms_reason), push] = attempts(status)
    assert (sms, sms_state) == ("sms", "failed") and "21610" in sms_reason
    assert push == ("push", "sent", "")
    assert [m["token"] for m in engine.fcm.sent] == ["tablet-token"]
    messages = {m.channel: m for m in await engine.client.messages(recipient="f3")}
    assert messages["sms"].state == "failed" and "21610" in (messages["sms"].reason or "")
    assert messages["push"].state == "sent"
    assert messages["push"].provider_id and messages["push"].provider_id.startswith("projects/")


async def test_transient_failures_are_retried_before_falling_back(engine: Engine) -> None:
    assert engine.twilio is not None
    engine.twilio.fail_next = 1
    journey(engine, "retry", "channel: sms\nfallback: [email]")
    status = await run(
        engine, "retry", {"id": "r1", "phone": "07911 123456", "email": "r1@example.com"}
    )
    assert attempts(status) == [("sms", "sent", "")]
    assert engine.twilio.requests == 2  # a 503, then the retry that went through
    assert len(engine.twilio.sent) == 1
    assert engine.mail.messages == []


async def test_preferences_topics_and_transactional(engine: Engine) -> None:
    engine.write("templates/multi", MULTI_TEMPLATE)
    engine.write(
        "prefs",
        """
journey: prefs
topic: product_news
steps:
  - send: news
    channel: email
    template: multi
  - send: receipt
    channel: email
    template: multi
    transactional: true
  - send: digest
    channel: email
    template: multi
    topic: weekly_digest
""",
    )
    people = [
        {"id": "p-unsub", "email": "unsub@example.com"},
        {"id": "p-topic", "email": "topic@example.com"},
        {"id": "p-supp", "email": "supp@example.com"},
        {"id": "p-ok", "email": "ok@example.com"},
    ]
    await engine.client.update_preferences("p-unsub", unsubscribed=True)
    await engine.client.update_preferences("p-topic", topics={"product_news": False})
    await engine.client.suppress("SUPP@example.com", kind="address", reason="hard bounce")
    handle = await engine.client.trigger("prefs", people)
    outcome = {}
    for run_handle in handle.runs:
        status = await engine.until_done(run_handle.run_id)
        outcome[status.recipient_id] = [
            (e.step, e.outcome, e.detail.get("reason", "")) for e in status.timeline
        ]
    assert outcome["p-unsub"] == [
        ("news", "skipped", "opted out (unsubscribed)"),
        ("receipt", "sent", ""),
        ("digest", "skipped", "opted out (unsubscribed)"),
    ]
    assert outcome["p-topic"] == [
        ("news", "skipped", "opted out of topic product_news"),
        ("receipt", "sent", ""),
        ("digest", "sent", ""),
    ]
    assert outcome["p-supp"] == [
        ("news", "skipped", "suppressed (address: hard bounce)"),
        ("receipt", "skipped", "suppressed (address: hard bounce)"),
        ("digest", "skipped", "suppressed (address: hard bounce)"),
    ]
    assert [s for s, o, _ in outcome["p-ok"] if o == "sent"] == ["news", "receipt", "digest"]


async def test_list_unsubscribe_and_one_click_tokens(engine: Engine) -> None:
    engine.write("templates/multi", MULTI_TEMPLATE)
    engine.write(
        "mails",
        """
journey: mails
topic: tips
steps:
  - send: tip
    channel: email
    template: multi
  - send: receipt
    channel: email
    template: multi
    transactional: true
""",
    )
    await run(engine, "mails", {"id": "u1", "email": "u1@example.com"})
    tip, receipt = engine.mail.messages
    for raw in engine.mail.received:
        check_email(raw)
    assert receipt["List-Unsubscribe"] is None
    assert tip["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = tip["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://acme.example/unsubscribe?token=")
    token = link.split("token=", 1)[1]
    assert verify_unsubscribe(SIGNING_SECRET, token.replace("%3D", "=")) == ("u1", "tips")
    assert link in tip.get_body(("plain",)).get_content()  # also a template variable
    preferences = await engine.client.unsubscribe(token.replace("%3D", "="))
    assert preferences.topics == {"tips": False}
    forged = sign_unsubscribe("another-secret", "u1")
    from journeys import InvalidTokenError

    try:
        await engine.client.unsubscribe(forged)
    except InvalidTokenError as exc:
        assert "signature does not match" in str(exc)
    else:
        raise AssertionError("a token signed with another secret was accepted")


async def test_a_retried_email_keeps_its_message_id_and_date(engine: Engine) -> None:
    journey(engine, "again", "channel: email")
    engine.mail.refuse_next = [451]  # the first attempt meets a transient failure
    status = await run(engine, "again", {"id": "r1", "email": "r1@example.com"})
    assert send_entry(status).outcome == "sent"
    assert engine.mail.received[0] == engine.mail.received[1]  # the same bytes
    refused, accepted = (check_email(raw) for raw in engine.mail.received)
    assert refused["Message-ID"] == accepted["Message-ID"]
    assert refused["Date"] == accepted["Date"]
    [record] = await engine.client.messages(recipient="r1")
    assert record.provider_id == accepted["Message-ID"]
    assert record.detail["smtp_reply"]


async def test_smtp_connections_are_reused(engine: Engine) -> None:
    engine.write("templates/multi", MULTI_TEMPLATE)
    engine.write(
        "two",
        """
journey: two
steps:
  - send: one
    channel: email
    template: multi
  - send: two
    channel: email
    template: multi
""",
    )
    handle = await engine.client.trigger(
        "two", [{"id": f"c{i}", "email": f"c{i}@example.com"} for i in range(3)]
    )
    for r in handle.runs:
        await engine.until_done(r.run_id)
    assert len(engine.mail.messages) == 6
    email = engine.activities.channels["email"]  # type: ignore[union-attr]
    assert 1 <= email.connections_opened <= email.settings.connections  # type: ignore[attr-defined]


async def test_each_failure_kind_ends_in_its_recorded_state(engine: Engine) -> None:
    engine.write("templates/multi", MULTI_TEMPLATE)
    engine.write(
        "kinds",
        f"""
journey: kinds
steps:
  - send: text
    channel: sms
    template: multi
  - send: notify
    channel: push
    template: multi
  - send: mail
    channel: email
    template: multi
  - send: hook
    channel: webhook
    url: {engine.hooks.url}/gone
""",
    )
    engine.mail.reject_code = 550
    engine.hooks.status = 410
    status = await run(engine, "kinds", {"id": "k1", "phone": "12", "email": "k1@example.com"})
    states = {m.step: m for m in await engine.client.messages(recipient="k1")}
    assert (states["text"].state, states["text"].reason) == (
        "skipped",
        "invalid address: invalid phone number '12': not a valid number in region GB",
    )
    assert (states["notify"].state, states["notify"].reason) == ("skipped", "no address")
    assert states["mail"].state == "failed" and "SMTP 550" in (states["mail"].reason or "")
    assert states["hook"].state == "failed" and "410" in (states["hook"].reason or "")
    assert [e.outcome for e in status.timeline] == ["skipped", "skipped", "failed", "failed"]
    message = await engine.client.message_status(states["mail"].id)
    assert isinstance(message, MessageRecord) and message.address == "k1@example.com"


async def test_undefined_variables_fail_the_message_instead_of_sending_it(engine: Engine) -> None:
    engine.write("templates/strict", 'email: { subject: "Hi {{ customer.nickname }}", text: "x" }')
    engine.write(
        "strict", "journey: strict\nsteps:\n  - send: s\n    channel: email\n    template: strict\n"
    )
    status = await run(engine, "strict", {"id": "s1", "email": "s1@example.com"})
    entry = send_entry(status)
    assert entry.outcome == "failed"
    assert "render:" in entry.detail["error"] and "nickname" in entry.detail["error"]
    assert engine.mail.messages == []


async def test_preview_renders_for_stored_and_sample_profiles(engine: Engine) -> None:
    await engine.client.store.profiles.upsert([("pv", {"first_name": "Pia"})])
    stored = await engine.client.preview("welcome", "email", recipient="pv")
    assert stored["subject"] == "Welcome to Acme, Pia!"
    sample = await engine.client.preview("crm_note", "webhook", profile={"email": "x@y.z"})
    assert sample["body"]["email"] == "x@y.z"


async def test_channel_rate_limits_go_to_their_task_queues(engine: Engine) -> None:
    from workers.worker import build_workers, channel_queue

    settings = engine.settings.model_copy(
        update={
            "sms": engine.settings.sms.model_copy(update={"rate_limit": 2.0}),
            "email": engine.settings.email.model_copy(update={"rate_limit": 50.0}),
        }
    )
    assert engine.activities is not None
    workers = build_workers(engine.temporal, engine.activities, "rl", settings)
    limits = {w.task_queue: w.config().get("max_task_queue_activities_per_second") for w in workers}
    assert limits[channel_queue("rl", "sms")] == 2.0
    assert limits[channel_queue("rl", "email")] == 50.0
    assert limits[channel_queue("rl", "push")] is None
    assert limits["rl"] is None
