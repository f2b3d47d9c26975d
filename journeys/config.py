"""Configuration: ``journeys.toml`` with ``JOURNEYS_*`` environment overrides.

The file is ``./journeys.toml`` (or the path in ``JOURNEYS_CONFIG``); every setting can be
overridden by ``JOURNEYS_<SECTION>_<KEY>`` (``JOURNEYS_STORE_URL``,
``JOURNEYS_TEMPORAL_ADDRESS``…; lists as comma-separated values) and top-level ones by
``JOURNEYS_<KEY>`` (``JOURNEYS_DIRECTORY``). Secrets are read only from the environment:
each channel's (``JOURNEYS_EMAIL_PASSWORD``, ``JOURNEYS_SMS_AUTH_TOKEN``,
``JOURNEYS_PUSH_SERVICE_ACCOUNT``, ``JOURNEYS_WEBHOOK_SECRET``: see its
:attr:`~definitions.channels.ChannelSpec.secrets`), ``JOURNEYS_PREFERENCES_SIGNING_SECRET``
and the server's keys.

Each channel's section (``[email]``, ``[sms]``…) is its own settings model, defined in its
module (``activities/channels/<name>.py``) on the shared
:class:`~definitions.channels.ChannelSettings` base; :class:`Settings` reads one for every
registered channel (:data:`~definitions.channels.CHANNELS`) and holds none of its own:
``settings.email`` is the ``[email]`` section, ``settings.channel(name)`` any channel's.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails

from definitions.channels import CHANNELS, ChannelSettings
from definitions.errors import ConfigurationError

__all__ = [
    "CohortSettings",
    "DevSettings",
    "PreferenceSettings",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "TemporalSettings",
    "load_settings",
]

CONFIG_FILE = "journeys.toml"
_SECRETS = {
    ("preferences", "signing_secret"): "JOURNEYS_PREFERENCES_SIGNING_SECRET",
    ("server", "api_key"): "JOURNEYS_SERVER_API_KEY",
    ("server", "app_api_key"): "JOURNEYS_SERVER_APP_API_KEY",
    ("server", "tokens"): "JOURNEYS_SERVER_TOKENS",
}
"""The secrets of the sections here; each channel names its own."""


def _secrets() -> dict[tuple[str, str], str]:
    """Every secret setting and the variable it is read from."""
    channels = {
        (name, key): f"JOURNEYS_{name.upper()}_{key.upper()}"
        for name, spec in CHANNELS.items()
        for key in spec.secrets
    }
    return {**channels, **_SECRETS}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TemporalSettings(_Section):
    """Where the Temporal server is."""

    address: str = "localhost:7233"
    namespace: str = "default"
    task_queue: str = "journeys"


class StoreSettings(_Section):
    """The store's database: a SQLite file by default, PostgreSQL by URL."""

    url: str = "sqlite:///.journeys/store.db"


class PreferenceSettings(_Section):
    """Unsubscribe links."""

    unsubscribe_url: str | None = None
    """Base URL of your unsubscribe page; ``?token=…`` is appended. ``https://`` in
    production: see :meth:`link_warning`."""
    signing_secret: str | None = Field(default=None, repr=False)
    """HMAC key of unsubscribe tokens (only from JOURNEYS_PREFERENCES_SIGNING_SECRET)."""

    def link_warning(self) -> str | None:
        """Why ``unsubscribe_url`` is unfit for production mail, or None.

        RFC 8058 one-click unsubscribe is an HTTPS POST: mailbox providers ignore a
        ``List-Unsubscribe-Post`` whose link is plain HTTP, and the token in the link would
        cross the network in clear. A link to a loopback host (``localhost``, ``*.localhost``,
        ``127.0.0.0/8``, ``::1``) is development and goes unremarked; any other host is
        taken to be production.
        """
        url = self.unsubscribe_url
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme.lower() == "https" or _loopback(parts.hostname or ""):
            return None
        return (
            f"[preferences] unsubscribe_url ({url}) is not https://: mailbox providers ignore "
            "one-click unsubscribe (RFC 8058) over plain HTTP and the signed tokens cross the "
            "network in clear; make it an https:// URL"
        )


def _loopback(host: str) -> bool:
    """Whether a URL's host is this machine: a development setup."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServerSettings(_Section):
    """``journeys serve``: the HTTP API."""

    host: str = "127.0.0.1"
    port: int = 8080
    certfile: str | None = None
    """TLS certificate (PEM); with ``keyfile`` the server speaks HTTPS."""
    keyfile: str | None = None
    site_id: str | None = None
    """Customer.io Track API credentials: HTTP Basic ``site_id:api_key``."""
    api_key: str | None = Field(default=None, repr=False)
    """Only from JOURNEYS_SERVER_API_KEY."""
    app_api_key: str | None = Field(default=None, repr=False)
    """Bearer key of the broadcast (App API) endpoint; only from JOURNEYS_SERVER_APP_API_KEY."""
    tokens: list[str] = Field(default_factory=list, repr=False)
    """Bearer tokens of the native API; only from JOURNEYS_SERVER_TOKENS (comma-separated)."""
    rate_limit: float = 100.0
    """Requests per second per credential (a burst of twice that is allowed)."""
    max_body_bytes: int = 32_768
    """Largest request body, except batches."""
    max_batch_bytes: int = 512_000
    """Largest batch body (Customer.io's limit is 500 KB)."""


class DevSettings(_Section):
    """``journeys dev``: the local Temporal server, the catchers and the developer inbox."""

    port: int = 7233
    ui_port: int = 8233
    db_file: str = ".journeys/temporal.db"
    inbox_port: int = Field(default=8234, ge=1, le=65535)
    """The developer inbox page (``http://localhost:8234``)."""
    inbox_file: str = ".journeys/inbox.db"
    """Where caught messages are kept (``journeys inbox`` reads it)."""
    webhooks: Literal["catch", "deliver"] = "catch"
    """``catch``: every webhook goes to the inbox, with the URL it was for; ``deliver``:
    webhooks are posted to their URLs (through the same guard as in production)."""


class CohortSettings(_Section):
    """How triggers with many recipients run as cohorts (``[cohorts]``)."""

    threshold: int = Field(default=50, ge=1)
    """A trigger with more recipients than this runs as cohorts; one run each up to it."""
    size: int = Field(default=1000, ge=1, le=5000)
    """Recipients per cohort workflow at most."""
    history_limit: int = Field(default=10_000, ge=100, le=40_000)
    """History events after which a cohort continues as new at its next quiet moment."""
    at_once: int = Field(default=10, ge=1, le=1000)
    """Cohorts of one trigger running at once at most: the next starts when one finishes.
    Bounds a worker's memory (each running cohort holds its members' state) whatever the
    number of recipients."""


class Settings(_Section):
    """Everything journeys reads from its configuration.

    Besides the sections below, one per registered channel, by its name (``settings.email``):
    read by :meth:`_channel_sections`, kept as the model's extra fields.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    directory: str = "journeys"
    temporal: TemporalSettings = TemporalSettings()
    store: StoreSettings = StoreSettings()
    preferences: PreferenceSettings = PreferenceSettings()
    server: ServerSettings = ServerSettings()
    dev: DevSettings = DevSettings()
    cohorts: CohortSettings = CohortSettings()

    @model_validator(mode="before")
    @classmethod
    def _dev_address(cls, raw: object) -> object:
        """``[dev] port`` set and ``[temporal] address`` not: clients talk to that dev server."""
        if not isinstance(raw, dict):
            return raw
        dev, temporal = raw.get("dev"), raw.get("temporal") or {}
        if isinstance(dev, dict) and "port" in dev and isinstance(temporal, dict):
            if "address" not in temporal:
                temporal = {**temporal, "address": f"localhost:{dev['port']}"}
            raw = {**raw, "temporal": temporal}
        return raw

    @model_validator(mode="wrap")
    @classmethod
    def _channel_sections(
        cls, raw: object, handler: ModelWrapValidatorHandler[Settings]
    ) -> Settings:
        """Each registered channel's section, validated by its model; other keys as usual.

        Unknown keys are refused as with ``extra="forbid"``, and every problem is reported at
        once, the channels' with the others.
        """
        if not isinstance(raw, dict):
            return handler(raw)
        own = {k: v for k, v in raw.items() if k in cls.model_fields}
        sections: dict[str, ChannelSettings] = {}
        problems: list[InitErrorDetails] = []
        for key, value in raw.items():
            if key not in cls.model_fields and key not in CHANNELS:
                problems.append({"type": "extra_forbidden", "loc": (key,), "input": value})
        for name, spec in CHANNELS.items():
            value = raw.get(name)
            if isinstance(value, spec.settings):
                sections[name] = value
                continue
            try:
                sections[name] = spec.settings.model_validate({} if value is None else value)
            except ValidationError as exc:
                problems.extend(_within(name, exc))
        try:
            settings = handler(own)
        except ValidationError as exc:
            problems = [*_within(None, exc), *problems]
            settings = None
        if problems or settings is None:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        object.__setattr__(settings, "__pydantic_extra__", sections)
        return settings

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:  # noqa: ANN401  (each channel's own settings class)
            """A channel's section by its name (``settings.email``)."""

    def channel(self, name: str) -> ChannelSettings:
        """A channel's settings section (its defaults for one registered since they were read).

        Raises:
            KeyError: no channel has that name.

        """
        section = (self.__pydantic_extra__ or {}).get(name)
        if isinstance(section, ChannelSettings):
            return section
        return CHANNELS[name].settings()

    def retry_windows(self, *, defaults: bool = False) -> dict[str, float]:
        """Seconds transient failures are retried, by channel.

        Args:
            defaults: every channel's, its default where none is configured (what runs
                are given); else only those configured.

        """
        windows = {}
        for name, spec in CHANNELS.items():
            window = self.channel(name).retry_window or (spec.retry_window if defaults else None)
            if window is not None:
                windows[name] = window.total_seconds()
        return windows

    def batch_sizes(self) -> dict[str, int]:
        """Recipients per send activity, by channel."""
        return {name: self.channel(name).batch_size for name in CHANNELS}

    def rate_limits(self) -> dict[str, float]:
        """Each channel's configured messages per second, where one is set."""
        limits = {}
        for name in CHANNELS:
            rate = self.channel(name).rate_limit
            if rate:
                limits[name] = float(rate)
        return limits


def _within(section: str | None, error: ValidationError) -> list[InitErrorDetails]:
    """A section's validation errors, located in the whole file."""
    where = () if section is None else (section,)
    found: list[InitErrorDetails] = []
    for item in error.errors(include_url=False):
        detail: InitErrorDetails = {
            "type": item["type"],
            "loc": (*where, *item["loc"]),
            "input": item["input"],
        }
        if "ctx" in item:
            detail["ctx"] = item["ctx"]
        found.append(detail)
    return found


def load_settings(
    path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the configuration file (if any) and apply environment overrides.

    Args:
        path: the file; default ``$JOURNEYS_CONFIG`` or ``./journeys.toml`` if it exists.
        environ: the environment to read overrides from (default ``os.environ``).

    Raises:
        ConfigurationError: the file does not parse, has unknown keys or wrong values,
            or holds a secret.

    """
    env = os.environ if environ is None else environ
    chosen = Path(path or env.get("JOURNEYS_CONFIG") or CONFIG_FILE)
    raw: dict[str, Any] = {}
    if chosen.is_file():
        try:
            raw = tomllib.loads(chosen.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{chosen}: invalid TOML: {exc}") from None
    elif path is not None or env.get("JOURNEYS_CONFIG"):
        raise ConfigurationError(f"{chosen}: configuration file not found")
    for (section, key), variable in _secrets().items():
        if key in raw.get(section, {}):
            raise ConfigurationError(
                f"{chosen}: [{section}] {key}: secrets are read only from the environment, "
                f"set {variable} instead"
            )
    _apply_environment(raw, env)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(p) for p in error["loc"])
            problems.append(f"{chosen}: {where}: {error['msg']} (found {error.get('input')!r})")
        raise ConfigurationError("\n".join(problems)) from None


def _apply_environment(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    sections: dict[str, type[BaseModel]] = {name: spec.settings for name, spec in CHANNELS.items()}
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, _Section):
            sections[name] = section
        elif (value := env.get(f"JOURNEYS_{name.upper()}")) is not None:
            raw[name] = value
    for name, section in sections.items():
        for key in section.model_fields:
            value = env.get(f"JOURNEYS_{name.upper()}_{key.upper()}")
            if value is not None:
                is_list = "list" in str(section.model_fields[key].annotation)
                parsed = [v.strip() for v in value.split(",") if v.strip()] if is_list else value
                raw.setdefault(name, {})[key] = parsed
