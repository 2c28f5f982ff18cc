"""The per-connection ``item_times`` snapshot is what the figures read, and a write makes a new one."""

from __future__ import annotations

from datetime import datetime

from obeya.engine.flow import flow_velocity, work_item_age
from obeya.engine.snapshot import KEPT, forget_snapshots, item_times_snapshot
from obeya.engine.window import Slice, Window
from obeya.model import Record
from obeya.store import Store
from tests.engine.builders import day, item, stream

MARCH = Window(datetime(2025, 3, 1), datetime(2025, 4, 1))
PAY = Slice(value_stream_id="test:pay")


def _done_item(key: str) -> list[Record]:
    return item(key, day(3, 1), [(day(3, 1), "Backlog"), (day(3, 2), "In Progress"), (day(3, 5), "Done")])


def test_a_write_is_seen_by_the_next_figure(store: Store) -> None:
    store.upsert_records([*stream("pay", "Payments", ["PAY"]), *_done_item("A")])
    assert flow_velocity(store, MARCH, PAY).completed == 1
    store.upsert_records(_done_item("B"))
    assert flow_velocity(store, MARCH, PAY).completed == 2
    store.upsert_records(item("C", day(3, 1), [(day(3, 3), "In Progress")]))
    assert [i.key for i in work_item_age(store, MARCH, PAY).items] == ["C"]


def test_one_snapshot_per_data_version_slice_and_end(store: Store) -> None:
    store.upsert_records([*stream("pay", "Payments", ["PAY"]), *_done_item("A")])
    first = item_times_snapshot(store, PAY, MARCH.end)
    assert item_times_snapshot(store, PAY, MARCH.end) == first
    assert store.query(f"SELECT id, completed_at FROM {first}") == [("test:A", day(3, 5))]
    assert item_times_snapshot(store, Slice(), MARCH.end) != first
    store.upsert_records(_done_item("B"))
    second = item_times_snapshot(store, PAY, MARCH.end)
    assert second != first
    assert store.query(f"SELECT count(*) FROM {second}") == [(2,)]


def test_old_snapshots_are_dropped(store: Store) -> None:
    store.upsert_records([*stream("pay", "Payments", ["PAY"]), *_done_item("A")])
    names = [item_times_snapshot(store, PAY, datetime(2025, 4, d)) for d in range(1, KEPT + 2)]
    kept = {r[0] for r in store.query("SELECT table_name FROM information_schema.tables")} & set(names)
    assert kept == set(names[1:])
    forget_snapshots(store)
    kept = {r[0] for r in store.query("SELECT table_name FROM information_schema.tables")} & set(names)
    assert kept == set()
