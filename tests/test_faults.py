"""The fault suite: its providers and its counting, then its small configuration.

The last test runs ``python -m benchmarks.faults --small``: a worker SIGKILLed at random
moments, the Temporal server killed and restarted, the SMTP server down for 25 s and a 25 s
webhook storm (429 with ``Retry-After``, then 500), during a cohort and single runs, each
once, on SQLite and PostgreSQL in turn; every message is counted at the providers by its id.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest

from activities.channels.webhook import webhook_id
from benchmarks.faults.scenarios import Timeline
from benchmarks.faults.tally import tally
from benchmarks.receivers import HookReceiver, Ledger, SmtpReceiver
from journeys.devserver import free_port
from journeys.store import MessageRecord
from tests.helpers import REPO, eventually

SCENARIOS = {"worker-kill", "temporal-kill", "smtp-outage", "webhook-storm"}


def mail(key: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "journeys@localhost"
    message["To"] = "a@example.com"
    message["X-Journeys-Message-Id"] = key
    message.set_content("hi")
    return message


async def test_the_smtp_server_goes_down_after_its_budget_and_comes_back_on_its_port() -> None:
    ledger = Ledger()
    smtp = SmtpReceiver(free_port(), ledger)
    smtp.start()
    long_id = "reference/trg_0123456789abcdef/cohort-1/m_0123456789abcdef/hello/email"
    try:
        smtp.stop(after=2)
        for key in ("one", long_id):
            await aiosmtplib.send(mail(key), hostname="127.0.0.1", port=smtp.port)

        async def refused() -> float | None:
            with pytest.raises(aiosmtplib.SMTPException):  # 421 while it stops, then no server
                await aiosmtplib.send(mail("refused"), hostname="127.0.0.1", port=smtp.port)
            return smtp.down_since

        # It stops by itself after the second message.
        await eventually(refused, lambda since: since is not None, what="the server down")
        with pytest.raises(aiosmtplib.SMTPConnectError):
            await aiosmtplib.send(mail("refused"), hostname="127.0.0.1", port=smtp.port)
        smtp.start()
        await aiosmtplib.send(mail("three"), hostname="127.0.0.1", port=smtp.port)
    finally:
        smtp.stop()
    accepted = ledger.dump()["accepted"]
    assert [a["key"] for a in accepted] == ["one", long_id, "three"]
    assert {a["recipient"] for a in accepted} == {"a@example.com"}


def test_the_webhook_receiver_storms_with_retry_after_then_accepts() -> None:
    ledger = Ledger()
    hooks = HookReceiver(free_port(), ledger)
    hooks.start()
    url = f"http://127.0.0.1:{hooks.port}/pro"

    def post(key: str) -> httpx.Response:
        body = {"customer": {"id": "u1"}}
        return httpx.post(url, json=body, headers={"webhook-id": key}, timeout=5)

    try:
        hooks.refuse(429, 2, after=1)
        assert post("first").status_code == 200
        storm = post("second")
        assert (storm.status_code, storm.headers["retry-after"]) == (429, "2")
        hooks.refuse(500)
        assert post("second").status_code == 500
        hooks.refuse(None)
        assert post("second").status_code == 200
    finally:
        hooks.stop()
    dump = ledger.dump()
    assert [(a["key"], a["recipient"], a["path"]) for a in dump["accepted"]] == [
        ("first", "u1", "/pro"),
        ("second", "u1", "/pro"),
    ]
    assert dump["refused"] == {"webhook": 2}


def row(message_id: str, recipient: str, channel: str, state: str) -> MessageRecord:
    return MessageRecord(message_id, "w", "r", message_id, recipient, channel, state)


def accepted(kind: str, message_id: str, recipient: str, at: float) -> dict[str, Any]:
    key = webhook_id(message_id) if kind == "webhook" else message_id
    return {"kind": kind, "key": key, "recipient": recipient, "at": at, "path": "/free"}


def test_the_count_tells_lost_from_duplicates_inside_and_outside_the_window() -> None:
    people = [{"id": p, "email": f"{p}@x.example", "plan": "free"} for p in ("a", "b", "c")]
    resent = MessageRecord("a/email", "w", "r", "a/email", "a", "email", "sent")
    log = [
        dataclasses.replace(resent, detail={"possible_duplicate": True}),
        row("a/webhook", "a", "webhook", "sent"),
        row("b/email", "b", "email", "sent"),
        row("b/webhook", "b", "webhook", "queued"),  # never accepted: lost
        row("c/email", "c", "email", "sent"),
        row("c/webhook", "c", "webhook", "sent"),
    ]
    ledger = [
        accepted("email", "a/email", "a@x.example", 10.0),
        accepted("email", "a/email", "a@x.example", 14.0),  # a kill at 10.4 between: inside
        accepted("webhook", "a/webhook", "a", 11.0),
        accepted("email", "b/email", "b@x.example", 12.0),
        accepted("email", "c/email", "c@x.example", 20.0),
        accepted("email", "c/email", "c@x.example", 25.0),  # no kill between: outside
        accepted("webhook", "c/webhook", "c", 21.0),
    ]
    counted = tally(people, {"b", "c"}, ledger, log, Timeline(10.4, 10.5, [10.4]), "any")
    assert counted["expected"] == 6 and counted["delivered"] == 5
    assert (counted["lost"], counted["lost_by_kind"], counted["lost_in_single_runs"]) == (
        1,
        {"webhook": 1},
        1,
    )
    assert counted["duplicates_inside_window"] == 1
    assert counted["duplicates_flagged"] == 1  # the log says the resent one may be twice
    assert counted["duplicates_outside_window"] == 1
    assert counted["window_seconds"] == pytest.approx(0.4)
    assert counted["log"]["lost_recorded_as"] == {"queued": 1}
    assert counted["log"]["queued"] == 1
    assert counted["log"]["accepted_ids_not_in_log"] == 0
    assert counted["recovery"]["resumed_seconds"] == pytest.approx(0.5)  # 11.0 - 10.5
    # A lost message the log calls sent, and an id it does not have, are shown.
    log[3] = row("b/webhook", "b", "webhook", "sent")
    ledger.append(accepted("webhook", "elsewhere", "c", 30.0))
    counted = tally(people, {"b", "c"}, ledger, log, Timeline(), "any")
    assert counted["log"]["lost_but_recorded_sent"] == 1
    assert counted["log"]["accepted_ids_not_in_log"] == 1
    assert counted["duplicates_outside_window"] == 3


@pytest.mark.faults
def test_no_fault_loses_duplicates_or_strands_a_message(tmp_path: Path) -> None:
    out = tmp_path / "faults.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.faults", "--small", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    report = result.stdout + result.stderr[-4000:]
    assert out.exists(), report
    rows = json.loads(out.read_text())["results"]
    assert {r["scenario"] for r in rows} == SCENARIOS, report
    assert {r["backend"] for r in rows} == {"sqlite", "postgresql"}, report
    for r in rows:
        where = f"{r['scenario']} on {r['backend']}\n{report}"
        # The fault did happen, in the path of the messages.
        assert r["fault"]["started"] is not None and r["fault"]["ended"] is not None, where
        assert not r["fault"]["notes"], where
        assert r["expected"] == 2 * (r["recipients"] + r["singles"]) > 0, where
        assert r["lost"] == 0, where
        assert r["duplicates_outside_window"] == 0, where
        # Each duplicate is one the log marks: sent again after a worker died handing it over.
        assert r["duplicates_flagged"] == r["duplicates_inside_window"], where
        assert r["stuck"] == 0, where
        assert r["log"]["queued"] == 0, where
        assert r["log"]["lost_but_recorded_sent"] == 0, where
        assert r["log"]["accepted_ids_not_in_log"] == 0, where
        assert r["unattributed"] == 0, where
        assert r["run_states"] == {"completed": r["recipients"] + r["singles"]}, where
    kills = next(r for r in rows if r["scenario"] == "worker-kill")["fault"]["kills"]
    assert len(kills) == 2, report
    storm = next(r for r in rows if r["scenario"] == "webhook-storm")
    assert storm["refused"].get("webhook", 0) > 0, report
    assert result.returncode == 0, report


def test_the_webhook_receiver_keeps_connections_and_never_takes_a_cut_short_request() -> None:
    ledger = Ledger()
    hooks = HookReceiver(free_port(), ledger)
    hooks.start()
    body = b'{"customer":{"id":"u1"}}'

    def request(key: str, sent: bytes) -> bytes:
        head = f"POST /pro HTTP/1.1\r\nhost: x\r\nwebhook-id: {key}\r\n"
        return head.encode() + f"content-length: {len(body)}\r\n\r\n".encode() + sent

    try:
        with socket.create_connection(("127.0.0.1", hooks.port), timeout=5) as kept:
            kept.sendall(request("one", body) + request("two", body))  # two on one connection
            answers = b""
            while answers.count(b"HTTP/1.1 200") < 2:
                answers += kept.recv(4096)
        with socket.create_connection(("127.0.0.1", hooks.port), timeout=5) as cut:
            cut.sendall(request("cut", body[:10]))  # the sender dies mid-body
        with socket.create_connection(("127.0.0.1", hooks.port), timeout=5) as last:
            last.sendall(request("three", body))
            assert last.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        hooks.stop()
    assert [a["key"] for a in ledger.dump()["accepted"]] == ["one", "two", "three"]


async def test_the_smtp_server_reads_dot_stuffed_messages_on_a_kept_connection() -> None:
    ledger = Ledger()
    smtp = SmtpReceiver(free_port(), ledger)
    smtp.start()
    try:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.port) as client:
            for key in ("dots", "after"):
                message = mail(key)
                message.set_content(".\n..\n.x\n")  # lines the sender dot-stuffs
                await client.send_message(message)
            await client.rset()
            await client.noop()
    finally:
        smtp.stop()
    assert [a["key"] for a in ledger.dump()["accepted"]] == ["dots", "after"]
