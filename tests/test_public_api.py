"""What users may import from journeys, and the error tree."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import journeys
from definitions import errors

PACKAGES = ("definitions", "activities", "workers", "journeys")

NOT_ERRORS = {
    "journeys.server.errors.RequestError": "the HTTP server's answer (FastAPI's HTTPException), "
    "turned into a response at the boundary; callers of the API see its status and body",
    "activities.channels.base.Withdrawn": "control flow inside the send activity: a message "
    "withdrawn before its provider call; the activity records it skipped and returns",
    "definitions.yaml_tree.TreeProblem": "control flow of the YAML reader, turned into a "
    "located problem of a DefinitionError",
}
"""Exception classes that are public in their module but never reach a caller, and why."""


def every_module() -> list[str]:
    names = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, package + "."):
            if ".migrations" not in module.name:
                names.append(module.name)
    return names


def test_exported_names() -> None:
    assert sorted(journeys.__all__) == sorted([
        "APIError", "AsyncClient", "AuthenticationError", "Client", "CohortStatus", "RateLimitError",
        "ConfigurationError", "DefinitionError", "DeliveryError", "EngineUnavailableError",
        "InvalidAddressError", "InvalidRecipientError", "InvalidRequestError", "InvalidTokenError", "JourneysClient",
        "JourneysError", "MessageRecord", "PermanentDeliveryError", "Preferences", "RenderError",
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


def test_every_exception_of_every_module_is_in_the_tree() -> None:
    found, outside = set(), []
    for name in every_module():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if not (inspect.isclass(value) and issubclass(value, BaseException)):
                continue
            if value.__module__ != name or attr.startswith("_"):
                continue
            found.add(f"{name}.{attr}")
            if not issubclass(value, errors.JourneysError) and f"{name}.{attr}" not in NOT_ERRORS:
                outside.append(f"{name}.{attr}")
    assert outside == [], "exceptions outside the JourneysError tree"
    assert set(NOT_ERRORS) <= found  # the exceptions named above still exist


def test_the_drawn_tree_names_every_error_with_its_parent() -> None:
    drawn = errors.__doc__ or ""
    lines = [line for line in drawn.splitlines() if re.search(r"[├└]── |^    JourneysError", line)]
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in lines:
        name = re.search(r"(\w+Error)", line)
        assert name
        depth = line.index(name.group(1))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name.group(1)] = stack[-1][1]
        stack.append((depth, name.group(1)))
    for name in errors.__all__:
        cls = getattr(errors, name)
        if cls is errors.JourneysError:
            continue
        assert name in parents, f"{name} is not drawn in definitions/errors.py"
        assert parents[name] == cls.__mro__[1].__name__, f"{name} drawn under {parents[name]}"
    assert set(parents) == set(errors.__all__) - {"JourneysError"}
