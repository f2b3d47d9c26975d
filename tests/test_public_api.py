"""What users may import from journeys, and the error tree."""

from __future__ import annotations

import journeys
from definitions import errors


def test_exported_names() -> None:
    assert sorted(journeys.__all__) == sorted([
        "APIError", "AsyncClient", "AuthenticationError", "Client", "CohortStatus", "RateLimitError",
        "ConfigurationError", "DefinitionError", "DeliveryError", "EngineUnavailableError",
        "InvalidAddressError", "InvalidRecipientError", "InvalidRequestError", "InvalidTokenError", "JourneysClient",
        "JourneysError", "MessageRecord", "PermanentDeliveryError", "Preferences",
        "RetryableDeliveryError", "RunHandle", "RunStatus", "Settings", "TimelineEntry",
        "TriggerHandle", "TriggerStatus", "UnknownJourneyError", "UnknownRunError", "cancel",
        "configure", "load_settings", "message_status", "messages", "preferences", "preview",
        "status", "track", "trigger",
    ])  # fmt: skip
    for name in journeys.__all__:
        assert getattr(journeys, name) is not None


def test_every_error_is_a_journeys_error() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.JourneysError)
    assert issubclass(errors.PermanentDeliveryError, errors.DeliveryError)
