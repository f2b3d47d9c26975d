"""journeys: customer journeys as YAML, run as durable Temporal workflows.

Synchronous use::

    from journeys import trigger, status, cancel, track
    handle = trigger("onboarding", recipients=[{"id": "u1", "email": "a@example.com"}])
    status(handle.run_id)

Asynchronous use: :class:`JourneysClient`.
"""

import activities.channels  # noqa: F401  (registers the built-in channels first)
from definitions.errors import (
    ConfigurationError,
    DefinitionError,
    DeliveryError,
    EngineUnavailableError,
    InvalidAddressError,
    InvalidRecipientError,
    InvalidRequestError,
    InvalidTokenError,
    JourneysError,
    PermanentDeliveryError,
    RenderError,
    RetryableDeliveryError,
    UnknownJourneyError,
    UnknownRunError,
)
from journeys import preferences
from journeys.api_client import APIError, AsyncClient, AuthenticationError, Client, RateLimitError
from journeys.client import JourneysClient
from journeys.config import Settings, load_settings
from journeys.consent import Preferences
from journeys.models import (
    CohortStatus,
    RunHandle,
    RunStatus,
    TimelineEntry,
    TriggerHandle,
    TriggerStatus,
)
from journeys.store import MessageRecord
from journeys.sync import (
    cancel,
    configure,
    message_status,
    messages,
    preview,
    status,
    track,
    trigger,
)

__all__ = [
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "CohortStatus",
    "ConfigurationError",
    "DefinitionError",
    "DeliveryError",
    "EngineUnavailableError",
    "InvalidAddressError",
    "InvalidRecipientError",
    "InvalidRequestError",
    "InvalidTokenError",
    "JourneysClient",
    "JourneysError",
    "MessageRecord",
    "PermanentDeliveryError",
    "Preferences",
    "RateLimitError",
    "RenderError",
    "RetryableDeliveryError",
    "RunHandle",
    "RunStatus",
    "Settings",
    "TimelineEntry",
    "TriggerHandle",
    "TriggerStatus",
    "UnknownJourneyError",
    "UnknownRunError",
    "cancel",
    "configure",
    "load_settings",
    "message_status",
    "messages",
    "preferences",
    "preview",
    "status",
    "track",
    "trigger",
]
