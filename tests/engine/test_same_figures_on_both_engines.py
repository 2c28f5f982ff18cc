"""The same data gives the same figures on DuckDB and on PostgreSQL: a small demo organisation is
loaded into both (once for the module), linked on both, and compared field by field (floats within a
tolerance): every headline figure, flow and DORA series point (by week and by month), the cumulative
flow (by flow state and by stage), every stage of the value stream map, the insights report
(bottlenecks, waste, recommendations), the maturity scores, and the rows of every evidence endpoint."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from obeya.demo import load_demo
from obeya.engine.evidence import METRICS, evidence
from obeya.engine.stages import value_stream_map
from obeya.engine.summary import (
    FigureRow,
    cumulative_flow,
    dora_series,
    dora_summary,
    flow_series,
    flow_summary,
)
from obeya.engine.window import Slice, Window
from obeya.insights import insights_report, maturity
from obeya.linking import derive_links
from obeya.store import Store, connect
from obeya.store.postgres_store import PostgresStore
from tests.conftest import POSTGRES_URL_VARIABLE

AS_OF = dt.date(2025, 6, 30)
WINDOW = Window.last("90d", AS_OF)

Engines = tuple[Store, Store]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    """The demo (seed 11, 400 items) loaded and linked on DuckDB and on PostgreSQL, for the module."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(f"comparing the engines needs PostgreSQL: set {POSTGRES_URL_VARIABLE}")
    duck = connect(f"duckdb:///{Path(tmp_path_factory.mktemp('engines')) / 'obeya.duckdb'}")
    postgres = connect(url, schema=f"obeya_test_{uuid.uuid4().hex[:12]}")
    try:
        for store in (duck, postgres):
            store.migrate()
            load_demo(store, seed=11, items=400, as_of=AS_OF)
            derive_links(store)
        yield duck, postgres
    finally:
        assert isinstance(postgres, PostgresStore)
        postgres.drop_schema()
        postgres.close()
        duck.close()


def _scopes(engines: Engines) -> list[Slice]:
    duck, postgres = engines
    streams = [r[0] for r in duck.query("SELECT id FROM value_streams ORDER BY id")]
    assert streams == [r[0] for r in postgres.query("SELECT id FROM value_streams ORDER BY id")]
    return [Slice(value_stream_id=stream) for stream in [None, *streams]]


def _same(a: object, b: object) -> bool:
    if isinstance(a, float | Decimal) or isinstance(b, float | Decimal):
        if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
            return a == b
        assert isinstance(a, int | float | Decimal) and isinstance(b, int | float | Decimal)
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def assert_same(a: object, b: object, where: str = "") -> int:
    """Assert two results are the same field by field (floats within a tolerance); returns how many
    leaf values were compared."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), where
        return sum(
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
            for f in dataclasses.fields(a)
        )
    if isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), (where, a, b)
        return sum(assert_same(x, y, f"{where}[{i}]") for i, (x, y) in enumerate(zip(a, b, strict=True)))
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (where, a, b)
        return sum(assert_same(a[k], b[k], f"{where}[{k!r}]") for k in a)
    assert _same(a, b), (where, a, b)
    return 1


def _few_scopes(engines: Engines) -> list[Slice]:
    """The whole organisation and one value stream: the slower comparisons (a DORA report per period,
    every evidence query) run on these, the slice conditions being the same for every stream."""
    return _scopes(engines)[:2]


def _rows(rows: list[FigureRow]) -> dict[str, tuple[object, object]]:
    return {r.metric: (r.value, r.previous) for r in rows}


def test_every_figure_is_the_same_on_both_engines(engines: Engines) -> None:
    duck, postgres = engines
    compared = 0
    for scope in _scopes(engines):
        for summary in (flow_summary, dora_summary):
            a, b = _rows(summary(duck, WINDOW, scope)), _rows(summary(postgres, WINDOW, scope))
            compared += assert_same(a, b, f"{scope} {summary.__name__}")
        compared += assert_same(
            flow_series(duck, WINDOW, scope, "week"), flow_series(postgres, WINDOW, scope, "week")
        )
        map_a, map_b = value_stream_map(duck, WINDOW, scope), value_stream_map(postgres, WINDOW, scope)
        compared += assert_same(map_a, map_b, f"{scope} map")
    # Not a vacuous comparison: the demo gives real figures in most places.
    assert compared > 1000
    figures = _rows(dora_summary(duck, WINDOW, Slice()))
    assert figures["deployments"][0] and figures["lead time for changes p50"][0]


@pytest.mark.parametrize("by", ["week", "month"])
def test_dora_series_are_the_same_on_both_engines(engines: Engines, by: str) -> None:
    duck, postgres = engines
    for scope in _few_scopes(engines):
        a, b = dora_series(duck, WINDOW, scope, by), dora_series(postgres, WINDOW, scope, by)  # type: ignore[arg-type]
        assert_same(a, b, f"{scope} {by}")
    points = dora_series(duck, WINDOW, Slice(), by)  # type: ignore[arg-type]
    # the window is 2 April (a Wednesday) to 30 June: 14 weeks, the first and last clipped; 3 months
    assert len({p.period for p in points}) == (14 if by == "week" else 3)
    assert any(p.value for p in points if p.metric == "lead time for changes p50")


@pytest.mark.parametrize("by", ["flow_state", "stage"])
def test_cumulative_flow_is_the_same_on_both_engines(engines: Engines, by: str) -> None:
    duck, postgres = engines
    for scope in _scopes(engines):
        a = cumulative_flow(duck, WINDOW, scope, by)  # type: ignore[arg-type]
        b = cumulative_flow(postgres, WINDOW, scope, by)  # type: ignore[arg-type]
        assert_same(a, b, f"{scope} {by}")
        assert len(a.days) == 90 and any(sum(counts) for counts in a.counts.values())


def test_insights_and_maturity_are_the_same_on_both_engines(engines: Engines) -> None:
    duck, postgres = engines
    a, b = insights_report(duck, WINDOW), insights_report(postgres, WINDOW)
    assert_same(a, b, "insights")
    assert a.bottlenecks and a.recommendations and any(s.figure is not None for s in a.waste)
    scores = maturity(duck, WINDOW)
    assert_same(scores, maturity(postgres, WINDOW), "maturity")
    assert all(d.level is not None for s in scores for d in s.dimensions if d.dimension != "dependencies")


@pytest.mark.parametrize("family", sorted(METRICS))
def test_evidence_rows_are_the_same_on_both_engines(engines: Engines, family: str) -> None:
    duck, postgres = engines
    with_rows = 0
    for scope in _few_scopes(engines):
        for metric in METRICS[family]:
            a, b = (
                evidence(duck, family, metric, WINDOW, scope),
                evidence(postgres, family, metric, WINDOW, scope),
            )
            assert_same(a, b, f"{scope} {family} {metric}")
            with_rows += bool(a.rows)
    # not vacuous: nearly every metric has rows in both scopes
    assert with_rows >= 2 * len(METRICS[family]) - 2
