"""Provider outages: sends are retried for a window of time, then failed with the reason;
a cancel or exit never waits for a retry, and what it withdrew is never sent."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.channels import build_channels
from activities.journey import JourneyActivities
from definitions import contract as c
from definitions.errors import RetryableDeliveryError
from definitions.steps.send import SendStep
from journeys import ConfigurationError, RunStatus, TriggerStatus
from journeys.config import Settings, load_settings
from journeys.devserver import free_port
from journeys.store import MessageRecord, Store
from journeys.store.messages import MessageKey
from tests.helpers import Engine, eventually
from tests.peers import HttpPeer, Reply, Request

Answer = tuple[int, dict[str, str]]


class Receiver:
    """A webhook receiver whose answer to each POST comes from ``answer(n)`` (n from 0)."""

    def __init__(self, answer: Callable[[int], Answer]) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        """Every POST: ``webhook-id``, the body and the status it was answered with."""
        self._lock = threading.Lock()
        self._paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver._paths.append(self.path)
                    status, headers = receiver.answer(len(receiver.requests))
                    receiver.requests.append(
                        {
                            "id": self.headers.get("webhook-id"),
                            "body": json.loads(raw),
                            "status": status,
                            "path": self.path,
                        }
                    )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def path_of(self, n: int) -> str:
        """The path of the ``n``th POST (from 0), asked while answering it."""
        return self._paths[n]

    def accepted(self) -> list[str]:
        """The webhook-ids of the POSTs answered 2xx (a duplicate would show twice)."""
        with self._lock:
            return [r["id"] for r in self.requests if r["status"] < 300]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def down_for(requests: int, retry_after: int = 1) -> Callable[[int], Answer]:
    """503 with ``Retry-After`` for the first ``requests`` POSTs, then 200."""
    return lambda n: (503, {"retry-after": str(retry_after)}) if n < requests else (200, {})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    peer = Receiver(down_for(0))
    yield peer
    peer.stop()


def hook_journey(engine: Engine, name: str, url: str, extra: str = "", fallback: str = "") -> None:
    engine.write(
        name,
        f"journey: {name}\n{extra}steps:\n  - send: note\n    channel: webhook\n"
        f"    url: {url}/note\n{fallback}",
    )


async def message_of(engine: Engine, recipient: str) -> MessageRecord:
    messages = await engine.client.messages(recipient=recipient)
    [message] = [m for m in messages if m.step == "note" and m.channel == "webhook"]
    return message


async def waiting_for_retry(engine: Engine, recipients: list[str]) -> None:
    """Until each recipient's message has failed once and waits for its next attempt."""

    async def states() -> list[str]:
        found = []
        for rid in recipients:
            rows = [m for m in await engine.client.messages(recipient=rid) if m.step == "note"]
            found.append(rows[0].state if rows and "last_error" in rows[0].detail else "")
        return found

    await eventually(states, lambda s: s == ["queued"] * len(recipients), what="a failed attempt")


async def test_a_provider_down_longer_than_five_attempts_gets_the_message_when_it_returns(
    engine: Engine, receiver: Receiver
) -> None:
    receiver.answer = down_for(7)  # runs started before retry windows gave up after 5
    hook_journey(engine, "patient", receiver.url)
    handle = await engine.client.trigger("patient", ["p1"])
    status = await engine.until_done(handle.run_id, timeout=60)
    assert [(e.step, e.outcome) for e in status.timeline] == [("note", "sent")]
    assert len(receiver.requests) == 8
    assert len(set(r["id"] for r in receiver.requests)) == 1  # the same message each time
    assert len(receiver.accepted()) == 1
    message = await message_of(engine, "p1")
    assert message.state == "sent"


async def test_a_cohort_waits_out_an_outage_and_sends_each_message_once(
    engine: Engine, receiver: Receiver
) -> None:
    # Five failures in a row and a batch stops trying the rest until its next attempt:
    # 30 failures take six attempts, more than runs started before retry windows had.
    receiver.answer = down_for(30)
    hook_journey(engine, "outage", receiver.url)
    people = [f"c{i}" for i in range(12)]
    handle = await engine.client.trigger("outage", people, cohorts=True)
    status = await eventually(
        lambda: engine.client.status(handle.trigger_id),
        lambda s: s.done,
        timeout=90,
        what="the end of the cohort",
    )
    assert isinstance(status, TriggerStatus)
    assert status.counts == {"completed": 12}
    assert status.steps["note"] == {"reached": 12, "sent": 12}
    accepted = receiver.accepted()
    assert len(accepted) == len(set(accepted)) == 12
    delivered = sorted(r["body"]["customer"]["id"] for r in receiver.requests if r["status"] < 300)
    assert delivered == sorted(people)
    assert {(await message_of(engine, rid)).state for rid in people} == {"sent"}


async def test_when_the_retry_window_ends_the_message_fails_with_the_reason(
    engine: Engine, receiver: Receiver
) -> None:
    receiver.answer = down_for(10**6)
    engine.client.retry_windows = {"webhook": 3.0}
    hook_journey(
        engine, "gives_up", receiver.url, fallback="    fallback: [email]\n    template: welcome\n"
    )
    handle = await engine.client.trigger("gives_up", [{"id": "g1", "email": "g1@example.com"}])
    status = await engine.until_done(handle.run_id, timeout=60)
    [entry] = status.timeline
    assert entry.outcome == "sent" and entry.detail["channel"] == "email"
    [webhook, _] = entry.detail["attempts"]
    assert webhook["state"] == "failed" and webhook["reason"].startswith("gave up after ")
    assert "over" in webhook["reason"] and "503" in webhook["reason"]
    message = await message_of(engine, "g1")
    assert message.channel == "webhook" and message.state == "failed"
    assert message.reason == webhook["reason"]
    assert len(engine.mail.messages) == 1


async def test_cancel_does_not_wait_for_a_retry_and_nothing_is_sent_after(
    engine: Engine, receiver: Receiver
) -> None:
    receiver.answer = down_for(10**6, retry_after=3600)  # the next attempt is an hour away
    hook_journey(engine, "held", receiver.url)
    handle = await engine.client.trigger("held", ["h1"])
    await waiting_for_retry(engine, ["h1"])
    status = await asyncio.wait_for(engine.client.cancel(handle.run_id), timeout=60)
    assert isinstance(status, RunStatus) and status.state == "cancelled"
    message = await message_of(engine, "h1")
    assert (message.state, message.reason) == ("skipped", "cancelled")
    described = await engine.temporal.get_workflow_handle(handle.runs[0].workflow_id).describe()
    assert not described.raw_description.pending_activities
    assert receiver.accepted() == []


async def test_one_member_cancelled_mid_retry_is_withdrawn_and_the_rest_wait(
    engine: Engine, receiver: Receiver
) -> None:
    receiver.answer = down_for(10**6, retry_after=3600)
    hook_journey(engine, "members", receiver.url)
    people = ["m1", "m2", "m3"]
    handle = await engine.client.trigger("members", people, cohorts=True)
    await waiting_for_retry(engine, people)
    member = await engine.client.status(handle.trigger_id, recipient="m2")
    assert isinstance(member, RunStatus)
    cancelled = await asyncio.wait_for(engine.client.cancel(member.run_id), timeout=60)
    assert isinstance(cancelled, RunStatus) and cancelled.state == "cancelled"
    assert (await message_of(engine, "m2")).state == "skipped"
    others = [(await message_of(engine, rid)).state for rid in ("m1", "m3")]
    assert others == ["queued", "queued"]  # still waiting for the provider
    status = await asyncio.wait_for(engine.client.cancel(handle.trigger_id), timeout=60)
    assert isinstance(status, TriggerStatus) and status.counts == {"cancelled": 3}
    for rid in people:
        message = await message_of(engine, rid)
        assert (message.state, message.reason) == ("skipped", "cancelled")
    assert receiver.accepted() == []


async def test_leaving_the_journey_mid_retry_withdraws_the_message(
    engine: Engine, receiver: Receiver
) -> None:
    receiver.answer = down_for(10**6, retry_after=3600)
    hook_journey(engine, "goal", receiver.url, extra="exit_when: { event: converted }\n")
    handle = await engine.client.trigger("goal", ["e1"])
    await waiting_for_retry(engine, ["e1"])
    await engine.client.track("e1", "converted")
    status = await engine.until_done(handle.run_id)
    assert status.state == "exited"
    message = await message_of(engine, "e1")
    assert (message.state, message.reason) == ("skipped", "left the journey")
    assert receiver.accepted() == []


async def test_claims_and_withdrawals_never_both_win(store_url: str) -> None:
    """A send's claim and a cancel's withdrawal race for each message: exactly one wins."""
    store = await Store.open(store_url)
    keys = [MessageKey(f"race/{i}", "wf", "run", "note", f"r{i}", "webhook") for i in range(100)]
    await store.messages.add(
        [
            MessageRecord(
                k.id, k.workflow_id, k.run_id, k.step, k.recipient_id, k.channel, "queued"
            )
            for k in keys
        ]
    )
    try:

        async def claim(key: MessageKey) -> bool:
            record = MessageRecord(
                key.id,
                key.workflow_id,
                key.run_id,
                key.step,
                key.recipient_id,
                key.channel,
                "sending",
            )
            return await store.messages.claim(record)

        claims: list[str | None]
        claims, withdrawals = await asyncio.gather(
            asyncio.gather(*(claim(k) for k in keys)),
            asyncio.gather(*(store.messages.withdraw([k], "cancelled") for k in keys)),
        )
        found = await store.messages.get_many([k.id for k in keys])
        for key, claimed, withdrawal in zip(keys, claims, withdrawals, strict=True):
            assert found[key.id].state == ("sending" if claimed else "skipped"), key.id
            assert claimed in ("queued", None)
            # Exactly one of the two won; the withdrawal that lost saw it being sent.
            assert (key.id in withdrawal.withdrawn) == (claimed is None), key.id
            assert (key.id in withdrawal.sending) == (claimed is not None), key.id
        # A message the log has never seen is recorded withdrawn, and cannot be claimed.
        fresh = MessageKey("race/new", "wf", "run", "note", "rn", "webhook")
        withdrawal = await store.messages.withdraw([fresh], "cancelled")
        assert (withdrawal.withdrawn, withdrawal.sending) == (["race/new"], [])
        record = MessageRecord(fresh.id, "wf", "run", "note", "rn", "webhook", "sending")
        assert await store.messages.claim(record) is None
        # A message an attempt left "sending" is claimed again, and says so.
        new = MessageRecord("race/brand-new", "wf", "run", "note", "rb", "webhook", "x")
        assert await store.messages.claim(new) == "new"
        assert await store.messages.claim(new) == "sending"
    finally:
        await store.close()


def test_retry_windows_are_configured_per_channel(tmp_path: Path) -> None:
    path = tmp_path / "journeys.toml"
    path.write_text('[email]\nretry_window = "2d"\n[webhook]\nretry_window = 600\n')
    settings = load_settings(path, environ={"JOURNEYS_SMS_RETRY_WINDOW": "90m"})
    assert settings.retry_windows() == {"email": 172800.0, "sms": 5400.0, "webhook": 600.0}
    assert Settings().retry_windows() == {}
    assert Settings().email.retry_window is None
    path.write_text('[push]\nretry_window = "90d"\n')
    with pytest.raises(ConfigurationError, match=r"push\.retry_window"):
        load_settings(path, environ={})
    path.write_text('[push]\nretry_window = "soon"\n')
    with pytest.raises(ConfigurationError, match="expected a duration"):
        load_settings(path, environ={})


def test_the_next_attempt_comes_after_a_quarter_of_the_time_failing() -> None:
    from datetime import timedelta

    from definitions.runtime import retry_delay

    assert retry_delay(timedelta(seconds=0)) == timedelta(seconds=1)
    assert retry_delay(timedelta(seconds=40)) == timedelta(seconds=10)
    assert retry_delay(timedelta(hours=3)) == timedelta(minutes=5)
    # The provider's Retry-After wins, and many quick 429s do not push the next try away.
    assert retry_delay(timedelta(seconds=20), retry_after=2) == timedelta(seconds=2)
    assert retry_delay(timedelta(seconds=28)) == timedelta(seconds=7)


async def member_status(engine: Engine, trigger_id: str, recipient: str) -> RunStatus:
    status = await engine.client.status(trigger_id, recipient=recipient)
    assert isinstance(status, RunStatus)
    return status


def per_member_journey(engine: Engine, name: str, url: str) -> None:
    engine.write(
        name,
        f"""journey: {name}
steps:
  - send: note
    channel: webhook
    url: "{url}/{{{{ customer.id }}}}"
  - send: hello
    channel: email
    template: welcome
""",
    )


async def test_one_failing_address_does_not_hold_the_rest_of_its_batch(engine: Engine) -> None:
    failing = {"/s3"}
    receiver = Receiver(lambda n: (200, {}))

    def by_path(n: int) -> Answer:
        return (503, {"retry-after": "1"}) if receiver.path_of(n) in failing else (200, {})

    receiver.answer = by_path
    try:
        per_member_journey(engine, "apart", receiver.url)
        people = [{"id": f"s{i}", "email": f"s{i}@example.com"} for i in range(1, 6)]
        handle = await engine.client.trigger("apart", people, cohorts=True)
        # The others go on to their email and finish while s3's webhook is retried.
        for rid in ("s1", "s2", "s4", "s5"):
            done = await eventually(
                lambda rid=rid: member_status(engine, handle.trigger_id, rid),
                lambda s: s.done,
                timeout=60,
                what=f"{rid} done",
            )
            assert [(e.step, e.outcome) for e in done.timeline] == [
                ("note", "sent"),
                ("hello", "sent"),
            ]
        held = await member_status(engine, handle.trigger_id, "s3")
        assert held.state == "running" and held.current_step == "note"
        assert (await message_of(engine, "s3")).state in ("queued", "sending")
        failing.clear()  # the address works again: s3 gets its message, then the rest
        done = await eventually(
            lambda: member_status(engine, handle.trigger_id, "s3"),
            lambda s: s.done,
            timeout=60,
            what="s3 done",
        )
        assert [(e.step, e.outcome) for e in done.timeline] == [
            ("note", "sent"),
            ("hello", "sent"),
        ]
        accepted = receiver.accepted()
        assert len(accepted) == len(set(accepted)) == 5
        status = await eventually(
            lambda: engine.client.status(handle.trigger_id), lambda s: s.done, what="trigger done"
        )
        assert isinstance(status, TriggerStatus) and status.counts == {"completed": 5}
        assert status.steps["note"] == {"reached": 5, "sent": 5}
        assert len(engine.mail.messages) == 5
    finally:
        receiver.stop()


async def test_a_cancel_after_a_members_batch_answered_keeps_their_entries_in_order(
    engine: Engine,
) -> None:
    receiver = Receiver(lambda n: (200, {}))
    receiver.answer = lambda n: (
        (503, {"retry-after": "3600"}) if receiver.path_of(n) in ("/t3", "/t4") else (200, {})
    )
    try:
        engine.client.batch_sizes = {"webhook": 2}
        per_member_journey(engine, "ordered", receiver.url)
        handle = await engine.client.trigger("ordered", ["t1", "t2", "t3", "t4"], cohorts=True)
        await waiting_for_retry(engine, ["t3", "t4"])  # their batch made no progress
        await eventually(
            lambda: message_of(engine, "t1"), lambda m: m.state == "sent", what="t1 sent"
        )
        t1 = await member_status(engine, handle.trigger_id, "t1")
        cancelled = await asyncio.wait_for(engine.client.cancel(t1.run_id), timeout=60)
        assert isinstance(cancelled, RunStatus) and cancelled.state == "cancelled"
        assert [(e.step, e.kind, e.outcome) for e in cancelled.timeline] == [
            ("note", "send", "sent"),
            ("note", "cancel", "cancelled"),
        ]
        status = await asyncio.wait_for(engine.client.cancel(handle.trigger_id), timeout=60)
        assert isinstance(status, TriggerStatus) and status.counts == {"cancelled": 4}
        for rid, state in (("t2", "sent"), ("t3", "skipped"), ("t4", "skipped")):
            assert (await message_of(engine, rid)).state == state
        assert engine.mail.messages == []
    finally:
        receiver.stop()


async def test_a_possible_duplicate_stays_flagged_through_a_failed_resend(tmp_path: Path) -> None:
    """An attempt died handing a message over; the next one fails, the one after sends it."""
    answers = [503, 200]

    def answer(request: Request) -> Reply:
        return answers.pop(0), {}

    peer = HttpPeer(answer)
    settings = Settings.model_validate({"webhook": {"allow_private": ["127.0.0.0/8"]}})
    store = await Store.open(f"sqlite:///{tmp_path}/store.db")
    activities = JourneyActivities(store, build_channels(settings))
    run = c.RunInfo("j", "p1", "wf", "run")
    request = c.SendInput(run, SendStep("hook", "webhook", url=f"{peer.url}/hook"), None, {})
    message_id = "wf/run/hook/webhook"
    try:
        died = MessageRecord(message_id, "wf", "run", "hook", "p1", "webhook", "sending")
        assert await store.messages.claim(died) == "new"  # the attempt that died
        env = ActivityEnvironment()
        with pytest.raises(ApplicationError) as failed:
            await env.run(activities.send_message, request)
        assert RetryableDeliveryError.crossed(failed.value)
        requeued = await store.messages.get(message_id)
        assert requeued is not None and requeued.state == "queued"
        assert requeued.detail["possible_duplicate"] is True
        result = await env.run(activities.send_message, request)
        assert result.state == "sent" and result.detail["possible_duplicate"] is True
        sent = await store.messages.get(message_id)
        assert sent is not None and sent.detail["possible_duplicate"] is True
    finally:
        peer.stop()
        for channel in activities.channels.values():
            await channel.close()
        await store.close()
