"""Configuration: ``journeys.toml`` with ``JOURNEYS_*`` environment overrides.

The file is ``./journeys.toml`` (or the path in ``JOURNEYS_CONFIG``); every setting can be
overridden by ``JOURNEYS_<SECTION>_<KEY>`` (``JOURNEYS_STORE_URL``,
``JOURNEYS_TEMPORAL_ADDRESS``…; lists as comma-separated values) and top-level ones by
``JOURNEYS_<KEY>`` (``JOURNEYS_DIRECTORY``). Secrets are read only from the environment:
``JOURNEYS_EMAIL_PASSWORD``, ``JOURNEYS_SMS_AUTH_TOKEN``, ``JOURNEYS_PUSH_SERVICE_ACCOUNT``,
``JOURNEYS_WEBHOOK_SECRET`` and ``JOURNEYS_PREFERENCES_SIGNING_SECRET``.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from definitions.durations import parse_duration
from definitions.errors import ConfigurationError

__all__ = [
    "CohortSettings",
    "DevSettings",
    "EmailSettings",
    "PreferenceSettings",
    "PushSettings",
    "ServerSettings",
    "Settings",
    "SmsSettings",
    "StoreSettings",
    "TemporalSettings",
    "WebhookSettings",
    "load_settings",
]

CONFIG_FILE = "journeys.toml"
MIN_RETRY_WINDOW = timedelta(seconds=1)
MAX_RETRY_WINDOW = timedelta(days=30)
_SECRETS = {
    ("email", "password"): "JOURNEYS_EMAIL_PASSWORD",
    ("sms", "auth_token"): "JOURNEYS_SMS_AUTH_TOKEN",
    ("push", "service_account"): "JOURNEYS_PUSH_SERVICE_ACCOUNT",
    ("webhook", "secret"): "JOURNEYS_WEBHOOK_SECRET",
    ("preferences", "signing_secret"): "JOURNEYS_PREFERENCES_SIGNING_SECRET",
    ("server", "api_key"): "JOURNEYS_SERVER_API_KEY",
    ("server", "app_api_key"): "JOURNEYS_SERVER_APP_API_KEY",
    ("server", "tokens"): "JOURNEYS_SERVER_TOKENS",
}


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


class _ChannelSection(_Section):
    """What every channel's section has."""

    batch_size: int = Field(default=250, ge=1, le=1000)
    """Recipients of a cohort per send activity on this channel."""
    retry_window: timedelta | None = None
    """How long transient failures are retried before the message fails (a duration such
    as ``"4h"`` or ``"2d"``, or seconds); default 24 hours for email, 4 hours for others."""

    @field_validator("retry_window", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except ValueError as exc:
                raise ValueError(f"expected a duration such as 4h or 2d: {exc}") from None
        return value

    @field_validator("retry_window")
    @classmethod
    def _window_bounds(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and not MIN_RETRY_WINDOW <= value <= MAX_RETRY_WINDOW:
            raise ValueError("expected a retry window between 1 second and 30 days")
        return value


class EmailSettings(_ChannelSection):
    """The SMTP server that sends email."""

    host: str = "localhost"
    port: int = 1025
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    sender: str = "Journeys <journeys@localhost>"
    timeout: float = 30.0
    ca_file: str | None = None
    """A CA bundle to verify the server's certificate with (default: the system's)."""
    connections: int = Field(default=2, ge=1, le=64)
    """SMTP connections a worker keeps open and reuses across sends."""
    rate_limit: float | None = None
    """Messages per second across all workers (Temporal task-queue rate limit)."""


class SmsSettings(_ChannelSection):
    """Twilio's Messages API (or anything that speaks its shape)."""

    base_url: str = "https://api.twilio.com"
    account_sid: str | None = None
    auth_token: str | None = Field(default=None, repr=False)
    from_number: str | None = None
    messaging_service_sid: str | None = None
    default_region: str = "US"
    """Where numbers written without a country code are taken to be."""
    timeout: float = 10.0
    rate_limit: float | None = None


class PushSettings(_ChannelSection):
    """Firebase Cloud Messaging, HTTP v1."""

    base_url: str = "https://fcm.googleapis.com"
    service_account_file: str | None = None
    """Path of the service-account key JSON (its token_uri is where tokens come from)."""
    service_account: str | None = Field(default=None, repr=False)
    """The key JSON itself (only from JOURNEYS_PUSH_SERVICE_ACCOUNT)."""
    timeout: float = 10.0
    rate_limit: float | None = None


class WebhookSettings(_ChannelSection):
    """How webhooks are posted and signed."""

    timeout: float = 10.0
    secret: str | None = Field(default=None, repr=False)
    """``whsec_…`` signing secret (only from JOURNEYS_WEBHOOK_SECRET)."""
    allow_private: list[str] = Field(default_factory=list)
    """Networks (CIDR) a webhook may reach though private, loopback or link-local."""
    rate_limit: float | None = None


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


class Settings(_Section):
    """Everything journeys reads from its configuration."""

    directory: str = "journeys"
    temporal: TemporalSettings = TemporalSettings()
    store: StoreSettings = StoreSettings()
    email: EmailSettings = EmailSettings()
    sms: SmsSettings = SmsSettings()
    push: PushSettings = PushSettings()
    webhook: WebhookSettings = WebhookSettings()
    preferences: PreferenceSettings = PreferenceSettings()
    server: ServerSettings = ServerSettings()
    dev: DevSettings = DevSettings()
    cohorts: CohortSettings = CohortSettings()

    @model_validator(mode="before")
    @classmethod
    def _dev_address(cls, raw: Any) -> Any:
        """``[dev] port`` set and ``[temporal] address`` not: clients talk to that dev server."""
        if not isinstance(raw, dict):
            return raw
        dev, temporal = raw.get("dev"), raw.get("temporal") or {}
        if isinstance(dev, dict) and "port" in dev and isinstance(temporal, dict):
            if "address" not in temporal:
                temporal = {**temporal, "address": f"localhost:{dev['port']}"}
            raw = {**raw, "temporal": temporal}
        return raw

    def retry_windows(self) -> dict[str, float]:
        """Seconds transient failures are retried, by channel (those configured)."""
        sections = {"email": self.email, "sms": self.sms, "push": self.push}
        sections["webhook"] = self.webhook
        return {
            name: section.retry_window.total_seconds()
            for name, section in sections.items()
            if section.retry_window is not None
        }

    def batch_sizes(self) -> dict[str, int]:
        """Recipients per send activity, by channel."""
        return {
            "email": self.email.batch_size,
            "sms": self.sms.batch_size,
            "push": self.push.batch_size,
            "webhook": self.webhook.batch_size,
        }


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
    for (section, key), variable in _SECRETS.items():
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
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, _Section):
            for key in section.model_fields:
                value = env.get(f"JOURNEYS_{name.upper()}_{key.upper()}")
                if value is not None:
                    is_list = "list" in str(section.model_fields[key].annotation)
                    parsed = (
                        [v.strip() for v in value.split(",") if v.strip()] if is_list else value
                    )
                    raw.setdefault(name, {})[key] = parsed
        elif (value := env.get(f"JOURNEYS_{name.upper()}")) is not None:
            raw[name] = value
