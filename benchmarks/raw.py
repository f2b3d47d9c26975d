"""The raw-protocol figure: the limit's messages with aiosmtplib and httpx alone.

The same messages as the limit (an email and a webhook per recipient, 32 recipients at a
time) sent with no channel code: a stdlib ``EmailMessage`` over a pool of kept aiosmtplib
connections (as many as the limit's ``connections``), and a JSON POST through one httpx
client whose connections are kept alive. What the peers and the two client libraries cost;
the limit's distance from it is what the channel code costs.
"""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import aiosmtplib
import httpx

from benchmarks import reference

if TYPE_CHECKING:
    from benchmarks.peers import RemotePeers

__all__ = ["CONCURRENCY", "SMTP_CONNECTIONS", "cpu_per_recipient", "delivered", "raw"]

CONCURRENCY = 32
"""Recipients in flight at once (as the limit)."""
SMTP_CONNECTIONS = 8
"""SMTP connections kept open (as the limit's ``[email] connections``)."""


def _email(person: dict[str, str], n: int) -> EmailMessage:
    mail = EmailMessage()
    mail["Date"] = formatdate(usegmt=False)
    mail["From"] = "Journeys <journeys@localhost>"
    mail["To"] = person["email"]
    mail["Subject"] = "Hello"
    mail["Message-ID"] = f"<raw-{n}@localhost>"
    mail["X-Journeys-Message-Id"] = f"raw/{person['id']}/email"
    mail.set_content("Hi")
    return mail


async def raw(count: int, peers: RemotePeers) -> dict[str, Any]:
    """Send the limit's messages to the peers with aiosmtplib and httpx; recipients/s."""
    idle: list[aiosmtplib.SMTP] = []
    slots = asyncio.Semaphore(SMTP_CONNECTIONS)
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    before = await asyncio.to_thread(peers.counts)

    async def send_email(mail: EmailMessage) -> None:
        async with slots:
            if idle:
                smtp = idle.pop()
            else:
                smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=peers.smtp_port)
                await smtp.connect()
            await smtp.send_message(mail)
            idle.append(smtp)

    async with httpx.AsyncClient(limits=limits, timeout=30) as http:

        async def one(n: int, person: dict[str, str]) -> None:
            async with gate:
                await send_email(_email(person, n))
                response = await http.post(
                    f"{peers.hook_url}/raw",
                    json=person,
                    headers={"webhook-id": f"raw/{person['id']}/webhook"},
                )
                response.raise_for_status()

        began, cpu, peers_cpu = time.perf_counter(), time.process_time(), peers.cpu_seconds()
        await asyncio.gather(*(one(n, p) for n, p in enumerate(reference.people(count))))
        elapsed = time.perf_counter() - began
        cost = cpu_per_recipient(count, cpu, peers_cpu, peers)
    for smtp in idle:
        await smtp.quit()
    return await delivered(peers, before, count, elapsed, cost)


async def delivered(
    peers: RemotePeers,
    before: dict[str, int],
    count: int,
    elapsed: float,
    cost: dict[str, float],
) -> dict[str, Any]:
    """A sending run's figures, once the peers say each recipient's email and webhook came."""
    after = await asyncio.to_thread(peers.counts)
    assert after["mail"] - before["mail"] == count
    assert after["hooks"] - before["hooks"] == count
    return {
        "recipients": count,
        "seconds": elapsed,
        "recipients_per_second": count / elapsed,
        **cost,
    }


def cpu_per_recipient(
    count: int, cpu: float, peers_cpu: float, peers: RemotePeers
) -> dict[str, float]:
    """CPU milliseconds per recipient since ``cpu`` (this process) and ``peers_cpu``.

    On a shared machine a rate is noisy; what each side spent per recipient is not.
    """
    return {
        "client_cpu_ms_per_recipient": 1000 * (time.process_time() - cpu) / count,
        "peers_cpu_ms_per_recipient": 1000 * (peers.cpu_seconds() - peers_cpu) / count,
    }
