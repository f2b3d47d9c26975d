"""Connecting to Temporal the way every journeys process must: same converter, same attributes."""

from __future__ import annotations

import asyncio
import re

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from definitions.errors import EngineUnavailableError
from definitions.workflow import SEARCH_ATTRIBUTES
from journeys.config import TemporalSettings

__all__ = ["connect", "ensure_search_attributes", "search_attribute_flags"]

_STARTING_ATTEMPTS = 60
"""Half-seconds to wait for a server whose frontend is still starting."""


async def connect(settings: TemporalSettings) -> Client:
    """A Temporal client that speaks the plan's data format.

    Raises:
        EngineUnavailableError: the server cannot be reached.

    """
    for attempt in range(_STARTING_ATTEMPTS):
        try:
            return await Client.connect(
                settings.address,
                namespace=settings.namespace,
                data_converter=pydantic_data_converter,
            )
        except RuntimeError as exc:
            # A server that is starting answers before its frontend is ready: wait for it.
            if "not healthy yet" in str(exc) and attempt < _STARTING_ATTEMPTS - 1:
                await asyncio.sleep(0.5)
                continue
            raise EngineUnavailableError(
                f"cannot reach Temporal at {settings.address} ({_reason(exc)}); "
                "start one with `journeys dev`, or set [temporal] address"
            ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _reason(exc: Exception) -> str:
    """The operating system's words in a connection error ("Connection refused"), or it all."""
    found = re.search(r'(?:message|error): "([^"]+)"', str(exc))
    return found.group(1) if found else str(exc)


def search_attribute_flags() -> list[str]:
    """``--search-attribute`` arguments for ``temporal server start-dev``."""
    flags = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}=Keyword"]
    return flags


async def ensure_search_attributes(client: Client) -> None:
    """Register the journeys search attributes on the namespace if they are missing."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        missing = {
            key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
            for key in SEARCH_ATTRIBUTES
            if key.name not in listed.custom_attributes
        }
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
            )
    except RPCError as exc:  # e.g. a cloud namespace where the API key may not do this
        raise EngineUnavailableError(
            f"cannot register search attributes {', '.join(k.name for k in SEARCH_ATTRIBUTES)}: "
            f"{exc.message}; register them as Keyword attributes with `temporal operator "
            "search-attribute create`"
        ) from exc
