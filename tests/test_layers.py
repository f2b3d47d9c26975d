"""Imports only point down: the layers of the design, checked over every module.

From the bottom: the language (``definitions``: the compiler, plans and the workflows, which
run in Temporal's sandbox), then what activities stand on (the store, the settings, consent
and the Temporal connection), the activities, the worker, and on top what users touch (the
client, the CLI, the HTTP server, ``journeys dev``, the demo, and every ``__main__``). A module may import its own
layer and those below it, never one above: a provider library cannot leak into workflow
code, and the store cannot come to depend on the client.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("language", ("definitions",)),
    (
        "foundation",
        (
            "journeys.store",
            "journeys.config",
            "journeys.consent",
            "journeys.temporal",
            "journeys.process",  # exit codes, signals, leaving without an abort
        ),
    ),
    ("activities", ("activities",)),
    ("worker", ("workers",)),
    ("surface", ("journeys",)),
]
"""Each layer and the module prefixes in it, bottom first; the longest prefix decides."""

PACKAGES = ("definitions", "activities", "workers", "journeys")


def layer_of(module: str) -> int | None:
    """The layer's index, or None for a module outside the project (the stdlib, a library).

    A package's ``__main__`` (``python -m workers``) is an entry point: the top of the stack.
    """
    if module.endswith(".__main__") and module.split(".")[0] in PACKAGES:
        return len(LAYERS) - 1
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module == prefix or module.startswith(prefix + ".")
            if inside and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def imports(path: Path, module: str) -> list[str]:
    """Every module ``path`` imports, at its top or inside a function."""
    found = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.append(base)
    return found


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            if "migrations" in parts:
                continue  # Alembic's scripts, run by the store
            name = ".".join(parts).removesuffix(".__init__")
            modules[name] = path
    return modules


def test_imports_only_point_down() -> None:
    upward = []
    for module, path in sorted(project_modules().items()):
        own = layer_of(module)
        assert own is not None, module
        for imported in imports(path, module):
            theirs = layer_of(imported)
            if theirs is not None and theirs > own:
                upward.append(
                    f"{module} ({LAYERS[own][0]}) imports {imported} ({LAYERS[theirs][0]})"
                )
    assert upward == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    # The rule itself: a store module importing the client would be caught.
    assert layer_of("journeys.store.messages") == 1
    assert layer_of("journeys.client") == 4
    assert layer_of("definitions.workflow") == 0 and layer_of("httpx") is None
    source = tmp_path / "messages.py"
    source.write_text("def f():\n    from ..client import JourneysClient\n", encoding="utf-8")
    assert imports(source, "journeys.store.messages") == ["journeys.client"]
