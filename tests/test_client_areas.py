"""JourneysClient is its areas composed: each a class of its own, none leaning on another's stubs."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import journeys.client
from journeys.client import JourneysClient
from journeys.client.facade import _Of


def test_the_areas_inherit_nothing_and_stub_nothing() -> None:
    for info in pkgutil.iter_modules(journeys.client.__path__, "journeys.client."):
        module = importlib.import_module(info.name)
        assert "TYPE_CHECKING" not in inspect.getsource(module), info.name
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == info.name and cls is not _Of:
                assert cls.__mro__[1:] == (object,), f"{cls.__qualname__} inherits"


def test_each_method_of_the_client_is_a_public_method_of_an_area() -> None:
    offered = {
        name: member for name, member in vars(JourneysClient).items() if isinstance(member, _Of)
    }
    assert len(offered) == 32
    for name, member in offered.items():
        assert member.method.__name__ == name
        assert getattr(JourneysClient, name) is member.method
