"""The exceptions raised by journeys, as one tree.

Every exception a caller can see derives from :class:`JourneysError`::

    JourneysError
    ├── DefinitionError          a journey, segment or template file is wrong
    ├── ConfigurationError       journeys.toml or a JOURNEYS_* variable is wrong
    ├── UnknownJourneyError      trigger() named a journey that does not exist
    ├── InvalidRequestError      input that cannot be used, field by field
    │   └── InvalidRecipientError    trigger() was given recipients it cannot use
    ├── UnknownRunError          status()/cancel() of a run or trigger that does not exist
    ├── EngineUnavailableError   the Temporal server or the store cannot be reached
    ├── InvalidTokenError        an unsubscribe token that was not signed here
    ├── RenderError              a template could not be rendered for a recipient
    ├── DeliveryError            a channel could not deliver a message
    │   ├── RetryableDeliveryError   worth trying again (timeouts, 5xx, 429)
    │   └── PermanentDeliveryError   will not succeed as it is (a 4xx, a refused target)
    │       └── InvalidAddressError  the recipient's address for the channel is invalid
    └── APIError                 the HTTP API answered with an error (journeys.Client)
        ├── AuthenticationError      401 or 403: a missing, unknown or misplaced credential
        └── RateLimitError           429, still, after the client's retries

User errors (the first five) carry what was wrong and where; nothing is started or
changed when one is raised. A test walks every module of the four packages: any other
exception class is private to its module or named there with the reason it never reaches
a caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

from temporalio.exceptions import ApplicationError

if TYPE_CHECKING:
    from definitions.diagnostics import Diagnostic

__all__ = [
    "APIError",
    "AuthenticationError",
    "ConfigurationError",
    "DefinitionError",
    "DeliveryError",
    "EngineUnavailableError",
    "InvalidAddressError",
    "InvalidRecipientError",
    "InvalidRequestError",
    "InvalidTokenError",
    "JourneysError",
    "PermanentDeliveryError",
    "RateLimitError",
    "RenderError",
    "RetryableDeliveryError",
    "UnknownJourneyError",
    "UnknownRunError",
]


class JourneysError(Exception):
    """Base class of every error journeys raises on purpose."""


class DefinitionError(JourneysError):
    """One or more journey, segment or template files are wrong.

    Attributes:
        diagnostics: every problem found, each with its file, line and column.

    """

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        count = len(self.diagnostics)
        head = f"{count} problem{'s' if count != 1 else ''} in journey definitions"
        super().__init__(head + ":\n" + "\n".join(d.format() for d in self.diagnostics))


class ConfigurationError(JourneysError):
    """The configuration file or an environment variable is wrong."""


class UnknownJourneyError(JourneysError):
    """A journey name that no YAML file defines.

    Attributes:
        name: the name asked for.
        available: the journeys that do exist.

    """

    def __init__(self, name: str, available: Sequence[str]) -> None:
        self.name = name
        self.available = sorted(available)
        known = ", ".join(self.available) if self.available else "none"
        super().__init__(f"unknown journey {name!r}: expected one of {known}")


class InvalidRequestError(JourneysError):
    """Input that cannot be used (a person id, event data, a segment definition…).

    Attributes:
        problems: one line per problem, each naming the field that is wrong.

    """

    heading = "invalid request, nothing was changed"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(f"{self.heading}:\n" + "\n".join(f"  {p}" for p in problems))


class InvalidRecipientError(InvalidRequestError):
    """Recipients passed to trigger() that cannot be used.

    Attributes:
        problems: one line per bad recipient, naming its position in the list.

    """

    heading = "invalid recipients, nothing was started"


class UnknownRunError(JourneysError):
    """A run id or trigger id that does not exist."""


class EngineUnavailableError(JourneysError):
    """The Temporal server or the store cannot be reached."""


class InvalidTokenError(JourneysError):
    """An unsubscribe token that was not signed by this installation, or was altered."""


class DeliveryError(JourneysError):
    """A channel could not deliver a message.

    Attributes:
        stale: addresses the provider says no longer exist (e.g. unregistered device
            tokens), to be removed from the profile.

    """

    def __init__(self, message: str, *, stale: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.stale = list(stale)

    @classmethod
    def crossing(cls, message: str, **options: Any) -> ApplicationError:  # noqa: ANN401  (ApplicationError's own keyword options, passed through)
        """The error as an activity raises it: an ``ApplicationError`` typed by the class.

        Its ``type`` is the class's name, which workflows and retry policies match
        (:meth:`crossed`); ``options`` are ``ApplicationError``'s.
        """
        return ApplicationError(message, type=cls.__name__, **options)

    @classmethod
    def crossed(cls, error: BaseException | None) -> TypeGuard[ApplicationError]:
        """Whether an error that crossed Temporal was raised as this class (:meth:`crossing`)."""
        return isinstance(error, ApplicationError) and error.type == cls.__name__


class RetryableDeliveryError(DeliveryError):
    """A delivery failure that may succeed if tried again (timeouts, 5xx, 429).

    Attributes:
        retry_after: seconds the provider asked to wait (``Retry-After``), if it did.

    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, stale: Sequence[str] = ()
    ) -> None:
        super().__init__(message, stale=stale)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """A delivery failure that will not succeed as it is (a rejected message, a 4xx)."""


class InvalidAddressError(PermanentDeliveryError):
    """The recipient's address for a channel is not valid (a malformed phone number)."""


class RenderError(JourneysError):
    """A template that could not be rendered for a recipient (undefined variable, bad filter)."""


class APIError(JourneysError):
    """An answer of the HTTP API that is an error.

    Attributes:
        status: the HTTP status.
        body: the decoded JSON body, when there was one.

    """

    def __init__(self, message: str, *, status: int, body: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class AuthenticationError(APIError):
    """401 or 403: the token is missing, unknown, or not for this endpoint."""


class RateLimitError(APIError):
    """429 after the retries; ``retry_after`` says how long the server asked to wait."""

    def __init__(
        self, message: str, *, status: int, body: object = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status, body=body)
        self.retry_after = retry_after
