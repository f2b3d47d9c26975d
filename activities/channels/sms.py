"""Text messages through Twilio's Messages API (form-encoded POST, basic auth).

The channel: ``[sms]`` settings, the template's ``sms`` variant (a body), the profile's
``phone`` attribute in E.164 form.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import phonenumbers
from pydantic import Field

from definitions.channels import ChannelSettings, ChannelSpec
from definitions.errors import (
    InvalidAddressError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from definitions.model import SchemaModel

from .base import MESSAGE_ID_HEADER, Delivery, Outgoing, Render
from .http import raise_for_delivery

if TYPE_CHECKING:
    from definitions.steps.send import SendStep

__all__ = ["CHANNEL", "SmsChannel", "SmsSettings", "SmsVariant", "to_e164"]


class SmsVariant(SchemaModel):
    """A text message."""

    body: str


class SmsSettings(ChannelSettings):
    """Twilio's Messages API, or anything that speaks its shape (``[sms]``)."""

    base_url: str = "https://api.twilio.com"
    account_sid: str | None = None
    auth_token: str | None = Field(default=None, repr=False)
    """Only from JOURNEYS_SMS_AUTH_TOKEN."""
    from_number: str | None = None
    messaging_service_sid: str | None = None
    default_region: str = "US"
    """Where numbers written without a country code are taken to be."""
    timeout: float = 10.0


# Twilio error codes that say the number cannot receive this message.
_NUMBER_ERRORS = {
    21211: "invalid 'To' number",
    21614: "not a mobile number",
    21610: "the recipient replied STOP",
    21408: "region not enabled",
}


def to_e164(raw: object, region: str) -> str:
    """A phone number in E.164 form.

    Raises:
        InvalidAddressError: saying why the number is not valid.

    """
    if not isinstance(raw, str | int):
        raise InvalidAddressError(f"invalid phone number {raw!r}: not a string")
    try:
        number = phonenumbers.parse(str(raw), region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidAddressError(f"invalid phone number {raw!r}: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidAddressError(
            f"invalid phone number {raw!r}: not a valid number in region "
            f"{phonenumbers.region_code_for_number(number) or region}"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class SmsChannel:
    """Sends the template's ``sms.body`` to the profile's ``phone``."""

    name = "sms"

    def __init__(self, settings: SmsSettings) -> None:
        self.settings = settings
        self._client = httpx.AsyncClient(base_url=settings.base_url, timeout=settings.timeout)

    def addresses(self, profile: dict[str, Any], step: SendStep, render: Render) -> list[str]:
        """The profile's ``phone``, normalised to E.164."""
        raw = profile.get("phone")
        if raw is None or raw == "":
            return []
        return [to_e164(raw, self.settings.default_region)]

    async def deliver(self, message: Outgoing) -> Delivery:
        """Create a Message resource; Twilio's number errors are permanent."""
        s = self.settings
        if not s.account_sid or not s.auth_token:
            raise PermanentDeliveryError(
                "SMS is not configured: set [sms] account_sid and JOURNEYS_SMS_AUTH_TOKEN"
            )
        form = {"To": message.addresses[0], "Body": message.content.get("body", "")}
        if s.messaging_service_sid:
            form["MessagingServiceSid"] = s.messaging_service_sid
        elif s.from_number:
            form["From"] = s.from_number
        else:
            raise PermanentDeliveryError("SMS is not configured: set [sms] from_number")
        await message.handover()
        try:
            response = await self._client.post(
                f"/2010-04-01/Accounts/{s.account_sid}/Messages.json",
                data=form,
                auth=(s.account_sid, s.auth_token),
                headers={MESSAGE_ID_HEADER: message.message_id},
            )
        except httpx.HTTPError as exc:
            raise RetryableDeliveryError(f"Twilio: {exc!r}") from exc
        body = _json(response)
        if response.status_code == 400 and body.get("code") in _NUMBER_ERRORS:
            code = body["code"]
            raise PermanentDeliveryError(
                f"Twilio {code}: {_NUMBER_ERRORS[code]} ({body.get('message', '')})"
            )
        raise_for_delivery(response, "Twilio", str(body.get("message") or ""))
        return Delivery(provider_id=body.get("sid"), detail={"status": body.get("status")})

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()


CHANNEL = ChannelSpec(
    name="sms", variant=SmsVariant, settings=SmsSettings, open=SmsChannel, secrets=("auth_token",)
)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
