"""SQLite's ``synchronous`` setting, chosen in the store URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from definitions.errors import ConfigurationError
from journeys.store import Store


async def _synchronous(url: str) -> int:
    store = await Store.open(url)
    try:
        async with store.db.engine.connect() as conn:
            return int((await conn.execute(text("PRAGMA synchronous"))).scalar_one())
    finally:
        await store.close()


async def test_normal_by_default(tmp_path: Path) -> None:
    # 1 is NORMAL: in WAL mode a killed process loses no commit.
    assert await _synchronous(f"sqlite:///{tmp_path}/a.db") == 1


async def test_full_on_request(tmp_path: Path) -> None:
    assert await _synchronous(f"sqlite:///{tmp_path}/b.db?synchronous=FULL") == 2
    # The setting is not taken for part of the file name.
    assert (tmp_path / "b.db").exists()


async def test_a_wrong_value_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="synchronous: expected normal or full"):
        await Store.open(f"sqlite:///{tmp_path}/c.db?synchronous=off")
