"""The same data gives the same figures on DuckDB and on PostgreSQL: a small demo organisation is
loaded into both, linked on both, and every headline figure, series point and stage of the value
stream map is compared."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

from obeya.demo import load_demo
from obeya.engine.stages import value_stream_map
from obeya.engine.summary import FigureRow, dora_summary, flow_series, flow_summary
from obeya.engine.window import Slice, Window
from obeya.linking import derive_links
from obeya.store import Store

AS_OF = dt.date(2025, 6, 30)
WINDOW = Window.last("90d", AS_OF)


def _loaded(open_store: Callable[[str], Store], engine: str) -> Store:
    store = open_store(engine)
    store.migrate()
    load_demo(store, seed=11, items=400, as_of=AS_OF)
    derive_links(store)
    return store


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def _rows(rows: list[FigureRow]) -> dict[str, tuple[object, object]]:
    return {r.metric: (r.value, r.previous) for r in rows}


def test_every_figure_is_the_same_on_both_engines(open_store: Callable[[str], Store]) -> None:
    duck, postgres = _loaded(open_store, "duckdb"), _loaded(open_store, "postgresql")
    streams = [r[0] for r in duck.query("SELECT id FROM value_streams ORDER BY id")]
    assert streams == [r[0] for r in postgres.query("SELECT id FROM value_streams ORDER BY id")]
    compared = 0
    for stream in [None, *streams]:
        scope = Slice(value_stream_id=stream)
        for summary in (flow_summary, dora_summary):
            a, b = _rows(summary(duck, WINDOW, scope)), _rows(summary(postgres, WINDOW, scope))
            assert a.keys() == b.keys()
            for metric in a:
                assert _same(a[metric][0], b[metric][0]) and _same(a[metric][1], b[metric][1]), (
                    stream,
                    metric,
                    a[metric],
                    b[metric],
                )
                compared += 1
        series_a = flow_series(duck, WINDOW, scope, "week")
        series_b = flow_series(postgres, WINDOW, scope, "week")
        assert [(s.metric, s.period) for s in series_a] == [(s.metric, s.period) for s in series_b]
        assert all(_same(x.value, y.value) for x, y in zip(series_a, series_b, strict=True))
        map_a, map_b = value_stream_map(duck, WINDOW, scope), value_stream_map(postgres, WINDOW, scope)
        for sa, sb in zip(map_a.stages, map_b.stages, strict=True):
            assert (sa.stage, sa.departures, sa.arrivals, sa.in_stage_now) == (
                sb.stage,
                sb.departures,
                sb.arrivals,
                sb.in_stage_now,
            )
            assert _same(sa.lead_time.p50, sb.lead_time.p50) and _same(
                sa.process_time.p50, sb.process_time.p50
            )
            assert sa.complete_and_accurate == sb.complete_and_accurate
        assert (map_a.bottleneck and map_a.bottleneck.stage) == (map_b.bottleneck and map_b.bottleneck.stage)
    # Not a vacuous comparison: the demo gives real figures in most places.
    assert compared > 100
    figures = _rows(dora_summary(duck, WINDOW, Slice()))
    assert figures["deployments"][0] and figures["lead time for changes p50"][0]
