"""Fixtures: the sample as import lines, and every row of a store to see that it did not change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from interchange_samples import SAMPLE, dump_lines

from obeya.model import TABLES
from obeya.store import Store


@pytest.fixture
def sample_lines() -> list[str]:
    """The sample, one JSON line per record."""
    return dump_lines(SAMPLE)


@pytest.fixture
def snapshot() -> Callable[[Store], dict[str, list[tuple[Any, ...]]]]:
    """Every row of every table of a store, to compare before and after."""

    def _snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
        return {
            kind: store.query(f'SELECT * FROM "{spec.name}" ORDER BY id') for kind, spec in TABLES.items()
        }

    return _snapshot
