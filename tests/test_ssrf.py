"""The URL guard: one DNS answer checked and connected to, redirects, TLS names, address forms.

Every test sends through a network backend that records where the guard connects and opens
sockets to loopback only: a "public" address in a test is never actually connected to.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from typing import Any

import httpcore
import httpx
import pytest
import trustme

from activities.channels import Outgoing, WebhookChannel
from activities.channels.webhook import WebhookSettings
from activities.url_guard import UrlGuard
from definitions.errors import (
    ConfigurationError,
    InvalidAddressError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from journeys.devserver import free_port
from journeys.sinks import WebhookSink
from tests.helpers import Engine

HOST = "hooks.example.test"


class LoopbackNetwork(httpcore.AsyncNetworkBackend):
    """Records every connection the guard opens; opens only those to loopback addresses."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []
        self._real = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if not ip_address(host).is_loopback:  # a host name here would raise: not pinned
            raise httpcore.ConnectError(f"test network: {host} is not loopback, not connected")
        return await self._real.connect_tcp(host, port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await self._real.sleep(seconds)


class ChangingResolver:
    """Answers each host from a list of successive answers; the last one repeats."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        if host not in self.answers:
            raise OSError(f"test resolver: no such host {host}")
        given = self.answers[host]
        return given[min(self.calls.count(host), len(given)) - 1]


def guard(
    answers: dict[str, list[list[str]]], allow: list[str]
) -> tuple[UrlGuard, ChangingResolver, LoopbackNetwork]:
    resolver, network = ChangingResolver(answers), LoopbackNetwork()
    made = UrlGuard(allow, setting="[webhook] allow_private", resolver=resolver, network=network)
    return made, resolver, network


def webhook(made: UrlGuard, allow: list[str]) -> WebhookChannel:
    return WebhookChannel(WebhookSettings(timeout=5, allow_private=allow), guard=made)


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    peer = WebhookSink().start()
    yield peer
    peer.stop()


# --- DNS rebinding ---------------------------------------------------------------------------


async def test_a_second_answer_is_never_connected_to(sink: WebhookSink) -> None:
    """Loopback (allowed) first, the metadata address next: the send reaches the first only."""
    made, resolver, network = guard({HOST: [["127.0.0.1"], ["169.254.169.254"]]}, ["127.0.0.0/8"])
    channel = webhook(made, ["127.0.0.0/8"])
    url = f"http://{HOST}:{sink.port}/in"
    try:
        delivered = await channel.deliver(Outgoing("m1", [url], {"body": {"n": 1}}))
        assert delivered.detail == {"status": 200}
        assert resolver.calls == [HOST]  # resolved once: the check and the connection
        # The sink closes each connection (HTTP/1.0), so the next send resolves again.
        with pytest.raises(InvalidAddressError) as refused:
            await channel.deliver(Outgoing("m2", [url], {"body": {"n": 2}}))
    finally:
        await channel.close()
    assert str(refused.value) == (
        f"refused to connect to {HOST} (169.254.169.254): link-local, not a public address; "
        "allow its network in [webhook] allow_private"
    )
    assert resolver.calls == [HOST, HOST]
    assert network.connects == [("127.0.0.1", sink.port)]
    [request] = sink.requests
    assert request.body == {"n": 1}
    assert request.headers["host"] == f"{HOST}:{sink.port}"


async def test_the_checked_public_answer_is_the_one_connected_to(sink: WebhookSink) -> None:
    """Public first, loopback next: the connection is pinned to the public address.

    The test network refuses to open it (tests talk to loopback only) and records the
    attempt; the loopback sink, the second answer, never hears of the message.
    """
    made, resolver, network = guard({HOST: [["1.1.1.1"], ["127.0.0.1"]]}, [])
    channel = webhook(made, [])
    try:
        with pytest.raises(RetryableDeliveryError, match=r"1\.1\.1\.1 is not loopback"):
            await channel.deliver(Outgoing("m", [f"http://{HOST}:{sink.port}/"], {"body": {}}))
    finally:
        await channel.close()
    assert resolver.calls == [HOST]
    assert network.connects == [("1.1.1.1", sink.port)]
    assert sink.requests == []


async def test_each_checked_answer_is_tried_in_order(sink: WebhookSink) -> None:
    """Nothing listens on 127.0.0.2: the next checked answer is used, nothing else."""
    made, _, network = guard({HOST: [["127.0.0.2", "::ffff:127.0.0.1"]]}, ["127.0.0.0/8"])
    channel = webhook(made, ["127.0.0.0/8"])
    try:
        await channel.deliver(Outgoing("m", [f"http://{HOST}:{sink.port}/"], {"body": {}}))
    finally:
        await channel.close()
    # The IPv4-mapped answer is judged and connected to as the IPv4 address it carries.
    assert network.connects == [("127.0.0.2", sink.port), ("127.0.0.1", sink.port)]
    assert len(sink.requests) == 1


async def test_a_refused_answer_among_allowed_ones_refuses_the_host(sink: WebhookSink) -> None:
    made, _, network = guard({HOST: [["127.0.0.1", "10.0.0.1"]]}, ["127.0.0.0/8"])
    channel = webhook(made, ["127.0.0.0/8"])
    try:
        with pytest.raises(InvalidAddressError, match=r"\(10\.0\.0\.1\): private"):
            await channel.deliver(Outgoing("m", [f"http://{HOST}:{sink.port}/"], {"body": {}}))
    finally:
        await channel.close()
    assert network.connects == []
    assert sink.requests == []


async def test_a_name_that_does_not_resolve_is_retryable() -> None:
    made, _, network = guard({}, [])
    channel = webhook(made, [])
    try:
        with pytest.raises(RetryableDeliveryError, match=r"cannot resolve nowhere\.example\.test"):
            await channel.deliver(Outgoing("m", ["http://nowhere.example.test/"], {"body": {}}))
    finally:
        await channel.close()
    assert network.connects == []


def test_a_bad_allow_list_entry_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"\[webhook\] allow_private: '10\.0\.0\.0/33'"):
        WebhookChannel(WebhookSettings(allow_private=["10.0.0.0/33"]))


# --- redirects -------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Peer:
    """An HTTP(S) server on 127.0.0.1: ``redirects`` maps a path to a 307 Location."""

    context: ssl.SSLContext | None = None
    redirects: dict[str, str] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                peer.seen.append(Seen(self.command, self.path, headers))
                location = peer.redirects.get(self.path)
                self.send_response(307 if location else 200)
                if location:
                    self.send_header("location", location)
                self.send_header("content-length", "0")
                self.end_headers()

            do_GET = do_POST = answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if self.context is not None:
            self.context.sni_callback = lambda _socket, name, _context: self.server_names.append(
                name
            )
            self._server.socket = self.context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def peer() -> Iterator[Peer]:
    server = Peer()
    yield server
    server.stop()


async def test_webhooks_do_not_follow_redirects(peer: Peer) -> None:
    peer.redirects["/in"] = f"http://127.0.0.1:{peer.port}/elsewhere"
    made, _, network = guard({HOST: [["127.0.0.1"]]}, ["127.0.0.0/8"])
    channel = webhook(made, ["127.0.0.0/8"])
    url = f"http://{HOST}:{peer.port}/in"
    try:
        with pytest.raises(PermanentDeliveryError) as failed:
            await channel.deliver(Outgoing("m", [url], {"body": {}}))
    finally:
        await channel.close()
    assert str(failed.value) == (
        f"POST {url} answered 307; redirect to 'http://127.0.0.1:{peer.port}/elsewhere' "
        "not followed"
    )
    assert [s.path for s in peer.seen] == ["/in"]
    assert network.connects == [("127.0.0.1", peer.port)]


REDIRECTS = [
    # (description, Location, what the refusal says)
    ("cloud metadata", "http://169.254.169.254/latest/meta-data/", "link-local"),
    ("a name for the metadata address", "http://metadata.example.test/", "link-local"),
    ("IPv6 loopback", "http://[::1]:{port}/", "::1: loopback"),
    ("loopback outside the allow-list", "http://127.0.0.2:{port}/", "127.0.0.2: loopback"),
    ("a hex IPv4 form", "http://0x7f.1:{port}/", "decimal, octal and hex forms"),
    ("credentials", "http://user:pw@" + HOST + ":{port}/", "credentials in the URL"),
]


@pytest.mark.parametrize(
    ("location", "reason"), [r[1:] for r in REDIRECTS], ids=[r[0] for r in REDIRECTS]
)
async def test_every_redirect_hop_is_checked(peer: Peer, location: str, reason: str) -> None:
    """A client that follows redirects (a future fetch step) checks each hop like the first."""
    peer.redirects["/start"] = location.format(port=peer.port)
    made, _, network = guard(
        {HOST: [["127.0.0.1"]], "metadata.example.test": [["169.254.169.254"]]},
        ["127.0.0.1/32"],
    )
    async with made.client(timeout=5, follow_redirects=True) as client:
        with pytest.raises(InvalidAddressError, match=reason):
            await client.get(f"http://{HOST}:{peer.port}/start")
    assert [s.path for s in peer.seen] == ["/start"]
    assert network.connects == [("127.0.0.1", peer.port)]


async def test_a_checked_redirect_is_followed(peer: Peer) -> None:
    peer.redirects["/start"] = "/final"
    made, _, network = guard({HOST: [["127.0.0.1"]]}, ["127.0.0.1/32"])
    async with made.client(timeout=5, follow_redirects=True) as client:
        response = await client.get(f"http://{HOST}:{peer.port}/start")
    assert response.status_code == 200
    assert [(s.path, s.headers["host"]) for s in peer.seen] == [
        ("/start", f"{HOST}:{peer.port}"),
        ("/final", f"{HOST}:{peer.port}"),
    ]
    assert set(network.connects) == {("127.0.0.1", peer.port)}


# --- TLS: the host name is verified, the pinned address connected to -------------------------


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def tls_peer(authority: trustme.CA, *names: str) -> Peer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(*names).configure_cert(context)
    return Peer(context=context)


def trusting(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


async def test_tls_verifies_the_host_name_on_the_pinned_address(authority: trustme.CA) -> None:
    server = tls_peer(authority, HOST)
    made, resolver, network = guard({HOST: [["127.0.0.1"], ["169.254.169.254"]]}, ["127.0.0.1/32"])
    try:
        async with made.client(timeout=5, verify=trusting(authority)) as client:
            response = await client.get(f"https://{HOST}:{server.port}/tls")
    finally:
        server.stop()
    assert response.status_code == 200
    assert server.server_names == [HOST]  # SNI carries the name, not the address
    assert [(s.path, s.headers["host"]) for s in server.seen] == [("/tls", f"{HOST}:{server.port}")]
    assert resolver.calls == [HOST]
    assert network.connects == [("127.0.0.1", server.port)]


async def test_tls_is_not_verified_against_the_address(authority: trustme.CA) -> None:
    """A certificate for 127.0.0.1 only does not pass for the host name connected there."""
    server = tls_peer(authority, "127.0.0.1")
    made, _, network = guard({HOST: [["127.0.0.1"]]}, ["127.0.0.1/32"])
    try:
        async with made.client(timeout=5, verify=trusting(authority)) as client:
            with pytest.raises(httpx.ConnectError, match="Hostname mismatch"):
                await client.get(f"https://{HOST}:{server.port}/tls")
    finally:
        server.stop()
    assert server.seen == []
    assert network.connects == [("127.0.0.1", server.port)]


# --- address forms ---------------------------------------------------------------------------

REFUSED_ADDRESSES = [
    # (description, URL, resolver answers for HOST, allow-list, what the refusal says)
    ("IPv4 loopback", "http://127.0.0.1:9/", None, [], "127.0.0.1: loopback"),
    ("a name for loopback", f"http://{HOST}/", ["127.0.0.1"], [], f"{HOST} (127.0.0.1): loopback"),
    ("cloud metadata", "http://169.254.169.254/", None, [], "169.254.169.254: link-local"),
    ("private 10/8", "http://10.1.2.3/", None, [], "10.1.2.3: private"),
    ("private 192.168/16", "http://192.168.0.10/", None, [], "private"),
    ("shared 100.64/10", "http://100.64.0.1/", None, [], "not globally routable"),
    ("multicast", "http://224.0.0.1/", None, [], "224.0.0.1: multicast"),
    ("0.0.0.0", "http://0.0.0.0:9/", None, ["0.0.0.0/0"], "unspecified address"),
    ("::", "http://[::]:9/", None, ["::/0"], "unspecified address"),
    ("IPv6 loopback", "http://[::1]:9/", None, ["127.0.0.0/8"], "::1: loopback"),
    (
        "IPv4-mapped loopback",
        "http://[::ffff:127.0.0.1]/",
        None,
        [],
        "::ffff:127.0.0.1, that is 127.0.0.1: loopback",
    ),
    (
        "IPv4-mapped metadata",
        "http://[::ffff:a9fe:a9fe]/",
        None,
        [],
        "a9fe, that is 169.254.169.254: link-local",
    ),
    ("unique local fc00::/7", "http://[fd00:ec2::254]/", None, [], "fd00:ec2::254: private"),
    ("IPv6 link-local", "http://[fe80::1]/", None, [], "fe80::1: link-local"),
    ("IPv4-compatible IPv6", "http://[::7f00:1]/", None, [], "IPv4-compatible IPv6"),
    ("6to4 of loopback", "http://[2002:7f00:1::]/", None, [], "leads to 127.0.0.1, loopback"),
    (
        "NAT64 of metadata",
        "http://[64:ff9b::a9fe:a9fe]/",
        None,
        [],
        "leads to 169.254.169.254, link-local",
    ),
    (
        "a name for mapped private",
        f"http://{HOST}/",
        ["::ffff:10.0.0.1"],
        [],
        "(::ffff:a00:1, that is 10.0.0.1): private",
    ),
    ("a name for unique local", f"http://{HOST}/", ["fc00::1"], [], "fc00::1): private"),
    ("loopback beside the allowed", "http://127.0.0.2/", None, ["127.0.0.1/32"], "loopback"),
]


@pytest.mark.parametrize(
    ("url", "answers", "allow", "reason"),
    [case[1:] for case in REFUSED_ADDRESSES],
    ids=[case[0] for case in REFUSED_ADDRESSES],
)
async def test_non_public_addresses_are_refused_before_connecting(
    url: str, answers: list[str] | None, allow: list[str], reason: str
) -> None:
    made, resolver, network = guard({HOST: [answers]} if answers else {}, allow)
    channel = webhook(made, allow)
    try:
        with pytest.raises(InvalidAddressError, match="refused to connect to") as refused:
            await channel.deliver(Outgoing("m", [url], {"body": {}}))
    finally:
        await channel.close()
    assert reason in str(refused.value)
    assert network.connects == []
    assert resolver.calls == ([HOST] if answers else [])  # literals are not resolved


REFUSED_URLS = [
    # (description, URL, what the refusal says)
    ("decimal IPv4", "http://2130706433/", "'2130706433' is a number but not a dotted-quad"),
    ("hex IPv4", "http://0x7f.1/", "decimal, octal and hex forms are refused"),
    ("short IPv4", "http://127.1/", "'127.1' is a number"),
    ("octal IPv4", "http://0177.0.0.1/", "Invalid IPv4 address"),
    ("IPv4 with a trailing dot", "http://127.0.0.1./", "'127.0.0.1.' is a number"),
    ("five numbers", "http://1.2.3.4.5/", "is a number"),
    ("percent-encoded digits", "http://%31%32%37.0.0.1/", "is a number"),
    ("a space in the host", "http://a b/", "'a%20b' is not a valid host name"),
    ("no host", "http:///x", "no host"),
    ("credentials", f"http://user:s3cret@{HOST}/", "credentials in the URL (user:password@)"),
    ("an @ in the password", f"http://user:s3cret@x@{HOST}/", "'http://***@hooks.example"),
    ("a host in the userinfo", "http://1.1.1.1@127.0.0.1/", "credentials in the URL"),
    ("ftp", f"ftp://{HOST}/", "scheme 'ftp' is not http or https"),
    ("file", "file:///etc/passwd", "scheme 'file' is not http or https"),
    ("gopher", f"gopher://{HOST}:70/", "scheme 'gopher'"),
    ("port 0", f"http://{HOST}:0/", "port 0 is out of range (1-65535)"),
    ("port 99999", f"http://{HOST}:99999/", "port 99999 is out of range"),
]


@pytest.mark.parametrize(
    ("url", "reason"), [case[1:] for case in REFUSED_URLS], ids=[case[0] for case in REFUSED_URLS]
)
async def test_refused_url_forms(url: str, reason: str) -> None:
    """Refused as the step's address is rendered, and again if one reaches ``deliver``."""
    made, resolver, network = guard({HOST: [["1.1.1.1"]]}, ["0.0.0.0/0"])
    channel = webhook(made, ["0.0.0.0/0"])
    step = type("Step", (), {"url": url})()
    try:
        with pytest.raises(InvalidAddressError, match="invalid URL") as at_render:
            channel.addresses({}, step, lambda text: text)
        with pytest.raises(InvalidAddressError) as at_send:
            await channel.deliver(Outgoing("m", [url], {"body": {}}))
    finally:
        await channel.close()
    assert reason in str(at_render.value)
    assert str(at_send.value) == str(at_render.value)
    assert "s3cret" not in str(at_render.value)
    assert resolver.calls == []
    assert network.connects == []


async def test_allowed_forms_reach_the_peer(sink: WebhookSink) -> None:
    """Ports, upper-case schemes and hosts, and allow-listed literals are fine."""
    made, _, network = guard({HOST: [["127.0.0.1"]]}, ["127.0.0.0/8"])
    channel = webhook(made, ["127.0.0.0/8"])
    urls = [
        f"HTTP://{HOST.upper()}:{sink.port}/a",
        f"http://127.0.0.1:{sink.port}/b",
        f"http://[::ffff:127.0.0.1]:{sink.port}/c",
    ]
    try:
        for url in urls:
            await channel.deliver(Outgoing("m", [url], {"body": {}}))
    finally:
        await channel.close()
    assert [(r.path, r.headers["host"]) for r in sink.requests] == [
        ("/a", f"{HOST}:{sink.port}"),
        ("/b", f"127.0.0.1:{sink.port}"),
        ("/c", f"[::ffff:127.0.0.1]:{sink.port}"),
    ]
    assert network.connects == [("127.0.0.1", sink.port)] * 3


async def test_the_system_resolver_is_checked_too() -> None:
    """``localhost`` from the system's resolver: refused, or its checked loopback addresses."""
    with pytest.raises(InvalidAddressError, match=r"refused to connect to localhost \(.*loopback"):
        await UrlGuard().resolve("localhost")
    allowed = await UrlGuard(["127.0.0.0/8", "::1/128"]).resolve("localhost")
    assert allowed and all(address.is_loopback for address in allowed)


# --- the refusal is the message log's reason -------------------------------------------------


async def test_refusals_are_the_message_logs_reason(engine: Engine) -> None:
    """Only addresses on this host: a regressed guard could not reach beyond it."""
    engine.write(
        "guarded",
        f"""
journey: guarded
steps:
  - send: form
    channel: webhook
    url: "http://2130706433:9/x"
  - send: v6
    channel: webhook
    url: "http://[::1]:9/x"
  - send: ok
    channel: webhook
    url: "{engine.hooks.url}/ok"
""",
    )
    handle = await engine.client.trigger("guarded", [{"id": "g1"}])
    await engine.until_done(handle.run_id)
    messages = {m.step: m for m in await engine.client.messages(recipient="g1")}
    assert (messages["form"].state, messages["form"].reason) == (
        "skipped",
        "invalid address: invalid URL 'http://2130706433:9/x': host '2130706433' is a number "
        "but not a dotted-quad IPv4 address (a.b.c.d); decimal, octal and hex forms are refused",
    )
    assert (messages["v6"].state, messages["v6"].reason) == (
        "failed",
        "refused to connect to ::1: loopback, not a public address; "
        "allow its network in [webhook] allow_private",
    )
    assert messages["ok"].state == "sent"
    assert [r.path for r in engine.hooks.requests] == ["/ok"]
