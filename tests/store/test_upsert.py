"""Re-ingesting a record updates it in place; nothing is duplicated; a failed write leaves nothing."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pytest

from obeya.model import TABLES, Change, ValueStream, WorkItem
from obeya.store import Store


def _item(external_id: str, status: str = "To Do", title: str = "Item") -> WorkItem:
    return WorkItem(
        source="jira",
        external_id=external_id,
        key=f"PAY-{external_id}",
        title=title,
        project="PAY",
        tool_type="Story",
        flow_item_type="feature",
        status=status,
        flow_state="waiting" if status == "To Do" else "active",
        created_at=datetime(2025, 1, 1),
        labels=["api"],
    )


def test_reingesting_updates_in_place(store: Store) -> None:
    store.upsert_records([_item("1"), _item("2")])
    store.upsert_records([_item("1", status="In Progress", title="Renamed")])
    store.upsert_records([_item("1", status="In Progress", title="Renamed")])
    assert store.count("work_item") == 2
    first = store.fetch_records("work_item", "id = ?", ["jira:1"])
    assert first == [_item("1", status="In Progress", title="Renamed")]
    assert store.fetch_records("work_item", "id = ?", ["jira:2"]) == [_item("2")]


def test_same_external_id_from_two_sources_are_two_records(store: Store) -> None:
    store.upsert_records([_item("1"), _item("1").model_copy(update={"source": "azure"})])
    assert sorted(r[0] for r in store.query("SELECT id FROM work_items")) == ["azure:1", "jira:1"]


def test_last_row_wins_within_one_batch(store: Store) -> None:
    batch = TABLES["work_item"].to_arrow([_item("7", title="first"), _item("8"), _item("7", title="last")])
    store.upsert("work_item", batch)
    assert store.query("SELECT title FROM work_items WHERE id = 'jira:7'") == [("last",)]
    assert store.count("work_item") == 2


def test_upsert_takes_columns_in_any_order(store: Store) -> None:
    batch = TABLES["value_stream"].to_arrow([ValueStream(source="obeya", external_id="pay", name="Payments")])
    store.upsert("value_stream", batch.select(list(reversed(batch.column_names))))
    assert store.query("SELECT id, name, stream_type FROM value_streams") == [
        ("obeya:pay", "Payments", "core")
    ]


def test_failed_transaction_leaves_store_as_it_was(store: Store) -> None:
    store.upsert_records([_item("1")])
    change = Change(
        source="github",
        external_id="9",
        repo="acme/api",
        number=9,
        title="x",
        state="open",
        created_at=datetime(2025, 1, 2),
    )
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert_records([_item("1", title="changed"), _item("3"), change])
        raise RuntimeError("the import found a bad line")
    assert store.count("work_item") == 1
    assert store.count("change") == 0
    assert store.query("SELECT title FROM work_items") == [("Item",)]


def test_nulls_and_empty_strings_survive_the_bulk_path(store: Store) -> None:
    store.upsert_records([_item("1", title="")])
    assert store.query("SELECT title, priority, done_at FROM work_items") == [("", None, None)]


def test_upsert_refuses_a_batch_missing_a_column(store: Store) -> None:
    batch = TABLES["work_item"].to_arrow([_item("1")]).drop_columns(["title"])
    with pytest.raises(KeyError):
        store.upsert("work_item", batch)
    assert store.count("work_item") == 0


def test_empty_batch_writes_nothing(store: Store) -> None:
    empty = pa.Table.from_pylist([], schema=TABLES["work_item"].arrow_schema)
    assert store.upsert("work_item", empty) == 0
    assert store.count("work_item") == 0


def test_every_write_bumps_the_data_version(store: Store) -> None:
    start = store.data_version()
    store.upsert_records([_item("1")])
    after_upsert = store.data_version()
    assert after_upsert > start
    store.query("SELECT count(*) FROM work_items")
    assert store.data_version() == after_upsert  # reads do not
    store.delete_where("work_item", "id = ?", ["jira:1"])
    assert store.data_version() > after_upsert
    assert store.count("work_item") == 0


def test_a_failed_write_does_not_bump_the_data_version(store: Store) -> None:
    start = store.data_version()
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert_records([_item("1")])
        raise RuntimeError("rolled back")
    assert store.data_version() == start
