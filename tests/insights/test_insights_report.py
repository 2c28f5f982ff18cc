"""`insights_report` computes each value stream's map once, and gives what `bottlenecks` and
`recommendations` give on their own.

Streams pay (project PAY) and web (project WEB), March 2025. In each: S1 Blocked (waiting, integration)
2 Mar → In Progress 6 → Ready for Test 7 → Testing 9 → Done 10; S2 Blocked 3 → In Progress 5 → Ready for
Test 6 → Testing 8 → Done 9. Committed wait: integration 4 + 2 = 6 d, verification 2 + 2 = 4 d, so
integration is each stream's bottleneck with 6 / 10 = 0.6 of it, and self-service environments fires.
"""

from __future__ import annotations

import importlib
from datetime import datetime

import pytest

from obeya.engine import stages
from obeya.engine.window import Window
from obeya.insights import bottlenecks, insights_report, recommendations
from obeya.model import Record
from obeya.store import Store
from tests.engine.builders import day, item, stream

MARCH = Window(datetime(2025, 3, 1), datetime(2025, 4, 1))


def _stream(key: str, name: str) -> list[Record]:
    return [
        *stream(key.lower(), name, [key]),
        *item(
            f"{key}-1",
            day(3, 1),
            [
                (day(3, 2), "Blocked"),
                (day(3, 6), "In Progress"),
                (day(3, 7), "Ready for Test"),
                (day(3, 9), "Testing"),
                (day(3, 10), "Done"),
            ],
            project=key,
        ),
        *item(
            f"{key}-2",
            day(3, 1),
            [
                (day(3, 3), "Blocked"),
                (day(3, 5), "In Progress"),
                (day(3, 6), "Ready for Test"),
                (day(3, 8), "Testing"),
                (day(3, 9), "Done"),
            ],
            project=key,
        ),
    ]


def test_insights_report_computes_each_value_stream_map_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.upsert_records([*_stream("PAY", "Payments"), *_stream("WEB", "Web")])
    computed: list[str | None] = []
    real = stages.value_stream_map

    def counted(*args: object, **kwargs: object) -> stages.ValueStreamMap:
        scope = args[2]
        computed.append(getattr(scope, "value_stream_id", None))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    # the names the insights call it by (the real map is computed: this only counts the calls); the
    # modules by import, as the package's functions of the same names hide them as attributes
    for module in ("obeya.insights.recommendations", "obeya.insights.bottlenecks"):
        monkeypatch.setattr(importlib.import_module(module), "value_stream_map", counted)
    report = insights_report(store, MARCH)
    assert sorted(computed, key=str) == ["test:pay", "test:web"]

    assert [(b.title, b.figure, b.items) for b in report.bottlenecks] == [
        ("Payments: bottleneck at integration", pytest.approx(0.6), ["PAY-1", "PAY-2"]),
        ("Web: bottleneck at integration", pytest.approx(0.6), ["WEB-1", "WEB-2"]),
    ]
    assert [r.title for r in report.recommendations] == [
        "Payments: self-service environments",
        "Web: self-service environments",
    ]
    # the same insights as the functions that compute their own maps
    assert report.bottlenecks == bottlenecks(store, MARCH)
    assert report.recommendations == recommendations(store, MARCH)
