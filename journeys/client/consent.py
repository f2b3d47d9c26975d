"""Consent, as the client changes it: preferences, unsubscribe tokens and suppressions.

The store keeps them (``store.consent``); here each value is checked first, and a signed
unsubscribe token is verified with the installation's secret.
"""

from __future__ import annotations

from collections.abc import Mapping

from definitions.errors import ConfigurationError, InvalidRequestError
from definitions.values import check_id, require_id
from journeys.client.context import ClientContext
from journeys.consent import Preferences, verify_unsubscribe

__all__ = ["Consent"]


class Consent:
    """A recipient's preferences, and the suppressions of people and addresses.

    Args:
        context: the client's connections and settings.

    """

    def __init__(self, context: ClientContext) -> None:
        self.context = context

    async def preferences(self, recipient: str) -> Preferences:
        """A recipient's preferences."""
        return await self.context.store.consent.preferences(recipient)

    async def update_preferences(
        self,
        recipient: str,
        *,
        unsubscribed: bool | None = None,
        channels: Mapping[str, bool] | None = None,
        topics: Mapping[str, bool] | None = None,
    ) -> Preferences:
        """Change a recipient's preferences; what is not given is kept.

        Args:
            recipient: the recipient's id.
            unsubscribed: unsubscribe from (True) or resubscribe to (False) marketing.
            channels: channel → opted out (True) or back in (False).
            topics: topic → subscribed (True) or not (False).

        Raises:
            InvalidRequestError: naming each value that is not of the right kind.

        """
        require_id(recipient, "recipient")
        problems = []
        if unsubscribed is not None and not isinstance(unsubscribed, bool):
            problems.append(f"unsubscribed: expected true or false, found {unsubscribed!r}")
        for name, given in (("channels", channels), ("topics", topics)):
            if given is None:
                continue
            if not isinstance(given, Mapping):
                problems.append(f"{name}: expected a mapping, found {type(given).__name__}")
                continue
            for key, flag in given.items():
                problems += check_id(key, f"{name} key")
                if not isinstance(flag, bool):
                    problems.append(f"{name}.{key}: expected true or false, found {flag!r}")
        if problems:
            raise InvalidRequestError(problems)
        return await self.context.store.consent.update_preferences(
            recipient,
            unsubscribed=unsubscribed,
            channels=dict(channels or {}),
            topics=dict(topics or {}),
        )

    async def unsubscribe(self, token: str) -> Preferences:
        """Apply a signed unsubscribe token (from a link or a List-Unsubscribe POST).

        Raises:
            InvalidTokenError: the token was not signed with this installation's secret.
            ConfigurationError: no signing secret is configured.

        """
        if not self.context.signing_secret:
            raise ConfigurationError("unsubscribe tokens need JOURNEYS_PREFERENCES_SIGNING_SECRET")
        recipient, topic = verify_unsubscribe(self.context.signing_secret, token)
        if topic:
            return await self.update_preferences(recipient, topics={topic: False})
        return await self.update_preferences(recipient, unsubscribed=True)

    async def suppress(self, value: str, *, reason: str, kind: str = "person") -> None:
        """Stop every message to a person (``kind="person"``) or an address (``"address"``).

        Raises:
            InvalidRequestError: the kind, the value or the reason is not usable.

        """
        value = _suppressed(value, kind)
        require_id(reason, "reason")
        await self.context.store.consent.suppress(kind, value, reason)

    async def unsuppress(self, value: str, *, kind: str = "person") -> None:
        """Lift a suppression."""
        await self.context.store.consent.unsuppress(kind, _suppressed(value, kind))


def _suppressed(value: object, kind: object) -> str:
    """The value a suppression is kept under (addresses lower-cased), checked."""
    if kind not in ("person", "address"):
        raise InvalidRequestError([f"kind: expected 'person' or 'address', found {kind!r}"])
    require_id(value, kind, limit=2048)
    return str(value).lower() if kind == "address" else str(value)
