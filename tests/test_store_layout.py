"""The store's layout: one module per aggregate, none of which reaches into another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import journeys.store
from journeys.store import Store

STORE = Path(journeys.store.__file__).parent

AGGREGATES = {
    "profiles": "ProfileStore",
    "events": "EventStore",
    "runs": "RunStore",
    "members": "MemberStore",
    "messages": "MessageStore",
    "consent": "ConsentStore",
    "segments": "SegmentStore",
}
"""Store attribute (and module of journeys.store) → the class it holds."""


def imported_store_modules(path: Path) -> set[str]:
    """The modules of journeys.store a module imports (``from journeys.store import x`` too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[:2] == ["journeys", "store"] and len(parts) > 2:
                found.add(parts[2])
    return found


@pytest.mark.parametrize("aggregate", sorted(AGGREGATES))
def test_an_aggregate_imports_no_other_aggregate(aggregate: str) -> None:
    """Each aggregate shares only the database module, the tables and helpers, not another."""
    imported = imported_store_modules(STORE / f"{aggregate}.py")
    assert imported & set(AGGREGATES) - {aggregate} == set()
    assert "store" not in imported  # nor the facade


@pytest.mark.parametrize("aggregate", sorted(AGGREGATES))
def test_an_aggregate_is_one_class_of_its_own(aggregate: str) -> None:
    """No mixins: the aggregate's class has no base class and no TYPE_CHECKING stubs."""
    tree = ast.parse((STORE / f"{aggregate}.py").read_text(encoding="utf-8"))
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith("Store")]
    assert cls.name == AGGREGATES[aggregate]
    assert cls.bases == []
    assert "TYPE_CHECKING" not in ast.dump(tree)


async def test_the_store_holds_each_aggregate_over_one_database(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/store.db")
    for attribute, name in AGGREGATES.items():
        aggregate = getattr(store, attribute)
        assert type(aggregate).__name__ == name
        assert aggregate.db is store.db
    await store.close()


def test_the_public_surface() -> None:
    assert sorted(journeys.store.__all__) == sorted([
        "ConsentStore", "Database", "EventStore", "MemberStore", "MessageKey", "MessageRecord",
        "MessageStore", "PersonPage", "ProfileStore", "RunRecord", "RunStore", "SegmentStore",
        "Store", "TriggerRecord", "Withdrawal", "normalise_url",
    ])  # fmt: skip
    for name in journeys.store.__all__:
        assert getattr(journeys.store, name) is not None
