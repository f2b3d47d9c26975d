"""SMS, push and signed webhooks against local peers that check the providers' shapes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest

from activities.channels import Outgoing, PushChannel, SmsChannel, WebhookChannel
from activities.channels.push import PushSettings
from activities.channels.sms import SmsSettings, to_e164
from activities.channels.webhook import WebhookSettings
from definitions.errors import (
    InvalidAddressError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from journeys.sinks import WebhookSink
from tests.peers import FcmPeer, TwilioPeer


@pytest.fixture
def twilio() -> Iterator[TwilioPeer]:
    peer = TwilioPeer()
    yield peer
    peer.http.stop()


@pytest.fixture
def fcm() -> Iterator[FcmPeer]:
    peer = FcmPeer()
    yield peer
    peer.http.stop()


def sms_channel(peer: TwilioPeer) -> SmsChannel:
    return SmsChannel(
        SmsSettings(
            base_url=peer.http.url,
            account_sid=peer.account_sid,
            auth_token=peer.auth_token,
            from_number="+15005550006",
            default_region="GB",
        )
    )


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 (415) 555-2671", "US", "+14155552671"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("06 12 34 56 78", "FR", "+33612345678"),
    ],
)
def test_numbers_are_normalised_to_e164(raw: str, region: str, expected: str) -> None:
    assert to_e164(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("12", "not a valid number"),
        ("not a number", "The string supplied did not seem to be a phone number"),
        ("+1 555", "not a valid number"),
    ],
)
def test_invalid_numbers_say_why(raw: str, why: str) -> None:
    with pytest.raises(InvalidAddressError, match=why):
        to_e164(raw, "US")


async def test_sms_in_twilio_shape(twilio: TwilioPeer) -> None:
    channel = sms_channel(twilio)
    [number] = channel.addresses({"phone": "07911 123456"}, None, str)
    assert number == "+447911123456"
    delivery = await channel.deliver(Outgoing("m1", [number], {"body": "Hi there"}))
    await channel.close()
    assert twilio.errors == []
    assert twilio.sent == [{"To": "+447911123456", "From": "+15005550006", "Body": "Hi there"}]
    assert delivery.provider_id is not None and delivery.provider_id.startswith("SM")


async def test_twilio_errors_are_translated(twilio: TwilioPeer) -> None:
    twilio.invalid = {"+447911123456": 21610}
    channel = sms_channel(twilio)
    with pytest.raises(PermanentDeliveryError, match="21610: the recipient replied STOP"):
        await channel.deliver(Outgoing("m1", ["+447911123456"], {"body": "x"}))
    twilio.status = 503
    with pytest.raises(RetryableDeliveryError, match="503"):
        await channel.deliver(Outgoing("m2", ["+447911123457"], {"body": "x"}))
    twilio.status = 429
    with pytest.raises(RetryableDeliveryError, match="429"):
        await channel.deliver(Outgoing("m3", ["+447911123457"], {"body": "x"}))
    await channel.close()


async def test_push_with_oauth_and_unregistered_tokens(fcm: FcmPeer) -> None:
    fcm.unregistered = {"gone-token"}
    channel = PushChannel(
        PushSettings(base_url=fcm.http.url, service_account=json.dumps(fcm.service_account()))
    )
    tokens = channel.addresses(
        {"devices": [{"token": "live-token", "platform": "ios"}, "gone-token"]}, None, str
    )
    assert tokens == ["live-token", "gone-token"]
    delivery = await channel.deliver(
        Outgoing("m1", tokens, {"title": "Hello", "body": "World", "data": {"k": "v"}})
    )
    again = await channel.deliver(Outgoing("m2", ["live-token"], {"body": "Again"}))
    await channel.close()
    assert fcm.errors == []
    assert fcm.tokens_issued == 1  # the access token is kept between sends
    assert delivery.stale == ["gone-token"]
    assert delivery.provider_id and delivery.provider_id.startswith("projects/journeys-test/")
    assert again.stale == []
    assert fcm.sent[0] == {
        "token": "live-token",
        "notification": {"title": "Hello", "body": "World"},
        "data": {"k": "v"},
    }


async def test_push_to_only_unregistered_tokens_fails_permanently(fcm: FcmPeer) -> None:
    fcm.unregistered = {"a", "b"}
    channel = PushChannel(
        PushSettings(base_url=fcm.http.url, service_account=json.dumps(fcm.service_account()))
    )
    with pytest.raises(PermanentDeliveryError, match="unregistered") as caught:
        await channel.deliver(Outgoing("m1", ["a", "b"], {"body": "x"}))
    await channel.close()
    assert caught.value.stale == ["a", "b"]


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's side of the Standard Webhooks spec, written from the spec."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        sig.split(",", 1)[1] == expected
        for sig in headers["webhook-signature"].split(" ")
        if sig.startswith("v1,")
    )


async def test_webhooks_are_signed() -> None:
    secret = "whsec_" + base64.b64encode(b"a-secret-of-32-bytes-for-testing").decode()
    sink = WebhookSink().start()
    channel = WebhookChannel(WebhookSettings(secret=secret, allow_private=["127.0.0.1/32"]))
    try:
        await channel.deliver(
            Outgoing("run/step/webhook", [f"{sink.url}/h"], {"body": {"hello": "world"}})
        )
        await channel.deliver(
            Outgoing("run/step/webhook", [f"{sink.url}/h"], {"body": {"hello": "world"}})
        )
    finally:
        await channel.close()
        sink.stop()
    first, retry = sink.requests
    assert verify_standard_webhook(secret, first.headers, first.raw)
    wrong = "whsec_" + base64.b64encode(b"some-other-secret-of-32-bytes!!!").decode()
    assert not verify_standard_webhook(wrong, first.headers, first.raw)
    assert first.headers["webhook-id"] == retry.headers["webhook-id"]  # an idempotency key
