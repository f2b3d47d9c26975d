"""Push devices given as a profile's ``devices`` attribute, read into the devices table.

Devices live in one place, the store's ``devices`` table: ``add_device`` writes there, and
so does a ``devices`` list given with a profile to ``identify`` or ``trigger`` (``[{token,
platform, …}]`` or plain token strings). The push channel's unregistered tokens are deleted
from there, and profiles are read with their devices from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from definitions.errors import InvalidRequestError

__all__ = ["MAX_PLATFORM_LENGTH", "MAX_TOKEN_LENGTH", "Device", "check_devices", "parse_devices"]

MAX_TOKEN_LENGTH = 4096
"""The longest push token (the table's column width; FCM's are about 160 characters)."""

MAX_PLATFORM_LENGTH = 32


@dataclass(frozen=True)
class Device:
    """One push device of a person."""

    token: str
    """The provider's token (FCM registration token)."""
    platform: str = "unknown"
    """``ios``, ``android``… as given; ``unknown`` when not."""
    attributes: dict[str, Any] = field(default_factory=dict)
    """Whatever else was given with it, kept and shown with the device."""


def _token_problem(token: object) -> str | None:
    if not isinstance(token, str) or not token.strip():
        return "a non-empty token"
    if len(token) > MAX_TOKEN_LENGTH:
        return f"a token of at most {MAX_TOKEN_LENGTH} characters, found {len(token)}"
    return None


def _device(item: object, where: str) -> tuple[Device | None, str | None]:
    if isinstance(item, str):
        problem = _token_problem(item)
        return (None, f"{where}: expected {problem}") if problem else (Device(item), None)
    if not isinstance(item, dict):
        return None, (
            f"{where}: expected a token or an object with a 'token', found {type(item).__name__}"
        )
    rest = dict(item)
    token, platform = rest.pop("token", None), rest.pop("platform", None) or "unknown"
    problem = _token_problem(token)
    if problem:
        return None, f"{where}.token: expected {problem}, found {token!r}"[:300]
    if not isinstance(platform, str) or len(platform) > MAX_PLATFORM_LENGTH:
        return None, (
            f"{where}.platform: expected a name of at most {MAX_PLATFORM_LENGTH} "
            f"characters, found {platform!r}"[:300]
        )
    return Device(token, platform, rest), None


def check_devices(value: object, where: str = "devices") -> tuple[list[Device], list[str]]:
    """The devices a ``devices`` attribute lists, and the problems with it, one line each.

    ``None`` lists none. Problems are phrased "where[i]: expected X, found Y".
    """
    if value is None:
        return [], []
    if not isinstance(value, list | tuple):
        return [], [
            f"{where}: expected a list of tokens or {{token, platform}} objects, "
            f"found {type(value).__name__}"
        ]
    devices: list[Device] = []
    problems: list[str] = []
    for index, item in enumerate(value):
        device, problem = _device(item, f"{where}[{index}]")
        if device is not None:
            devices.append(device)
        if problem is not None:
            problems.append(problem)
    return devices, problems


def parse_devices(value: object, where: str = "devices") -> list[Device]:
    """The devices of a ``devices`` attribute, or :class:`InvalidRequestError`."""
    devices, problems = check_devices(value, where)
    if problems:
        raise InvalidRequestError(problems)
    return devices
