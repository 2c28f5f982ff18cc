"""Schema version 9: a store synced by the GitHub normalizer that named issue transitions by issue-event id
(``owner/name#N/events/ID``) holds, after `obeya db upgrade` and `obeya replay`, only today's ids
(``#N/created``, ``#N/closed@SECOND``, ``#N/reopened@SECOND``) and the flow figures they give."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from obeya.connectors.raw import raw_event
from obeya.connectors.sync import replay
from obeya.engine.flow import flow_time
from obeya.engine.window import Window
from obeya.model.ids import record_id
from obeya.model.records import RawEvent, StatusTransition, WorkItem
from obeya.model.vocabulary import FlowState
from obeya.normalize.rules import MappingRules
from obeya.store import Store

REPO = "octo/shop"
ISSUE = f"{REPO}#7"
ITEM = record_id("github", ISSUE)
RULES = MappingRules()
RECEIVED = datetime(2024, 4, 1, tzinfo=UTC)
CREATED = datetime(2024, 3, 1, 9)
CLOSED = datetime(2024, 3, 5, 10)
REOPENED = datetime(2024, 3, 6, 11)
CLOSED_AGAIN = datetime(2024, 3, 10, 12)  # the issue's closed_at; GitHub dates its event a second later
MARCH = Window(datetime(2024, 3, 1), datetime(2024, 4, 1))

# (event id, kind, the event's created_at)
EVENTS = (
    (101, "closed", "2024-03-05T10:00:00Z"),
    (102, "reopened", "2024-03-06T11:00:00Z"),
    (103, "closed", "2024-03-10T12:00:01Z"),
)


def _raw_events() -> list[RawEvent]:
    """An issue closed, reopened and closed again, as the collector stores it (issue, then its events)."""
    user = {"id": 1, "login": "ana", "type": "User"}
    issue = {
        "number": 7,
        "title": "Checkout times out",
        "state": "closed",
        "created_at": "2024-03-01T09:00:00Z",
        "closed_at": "2024-03-10T12:00:00Z",
        "updated_at": "2024-03-10T12:00:00Z",
        "user": user,
        "labels": [],
    }
    events = [raw_event("github", "issue", f"{REPO}/7", issue, connection="gh", received_at=RECEIVED)]
    for event_id, kind, at in EVENTS:
        item = {"id": event_id, "event": kind, "created_at": at, "actor": user}
        key = f"{REPO}/7/{event_id}"
        events.append(raw_event("github", "issue_event", key, item, connection="gh", received_at=RECEIVED))
    return events


def _old_records(raw: list[RawEvent]) -> list[WorkItem | StatusTransition]:
    """The records the normalizer before the state-and-second ids made of `raw`: the work item and one
    transition per close or reopen, ``#N/events/ID`` at the event's own time, no opening."""
    opened, closed = RULES.status("open"), RULES.status("closed")
    records: list[WorkItem | StatusTransition] = [
        WorkItem(
            source="github",
            external_id=ISSUE,
            raw_event_id=raw[0].id,
            key=ISSUE,
            title="Checkout times out",
            project=REPO,
            tool_type="issue",
            flow_item_type="feature",
            status="closed",
            flow_state=closed.flow_state,
            stage=closed.stage,
            labels=[],
            created_at=CREATED,
            done_at=CLOSED_AGAIN,
            updated_at=CLOSED_AGAIN,
        )
    ]
    for event, (event_id, kind, at) in zip(raw[1:], EVENTS, strict=True):
        before, after = (opened, closed) if kind == "closed" else (closed, opened)
        records.append(
            StatusTransition(
                source="github",
                external_id=f"{ISSUE}/events/{event_id}",
                raw_event_id=event.id,
                work_item_id=ITEM,
                at=datetime.fromisoformat(at[:19]),
                from_status="open" if kind == "closed" else "closed",
                to_status="closed" if kind == "closed" else "open",
                from_flow_state=before.flow_state,
                to_flow_state=after.flow_state,
                from_stage=before.stage,
                to_stage=after.stage,
                author_id=record_id("github", "user/1"),
            )
        )
    return records


def _store_at_version_8(open_store: Callable[[str], Store], engine: str) -> Store:
    """A version-8 store holding the raw events and the old normalizer's records."""
    store = open_store(engine)
    store.migrate(target=8)
    raw = _raw_events()
    with store.transaction():
        store.upsert_records(raw)
        store.upsert_records(_old_records(raw))
    return store


def _transitions(store: Store) -> list[tuple[str, datetime, str]]:
    rows = store.query(
        "SELECT t.external_id, t.at, t.to_status FROM status_transitions t ORDER BY t.at, t.external_id"
    )
    return [(str(r[0]), r[1], str(r[2])) for r in rows]


def _periods(store: Store) -> list[tuple[str, datetime, datetime | None]]:
    rows = store.query(
        "SELECT flow_state, entered_at, left_at FROM flow_periods WHERE item_id = ? ORDER BY entered_at",
        [ITEM],
    )
    return [(str(r[0]), r[1], r[2]) for r in rows]


NEW_TRANSITIONS = [
    (f"{ISSUE}/created", CREATED, "open"),
    (f"{ISSUE}/closed@2024-03-05T10:00:00Z", CLOSED, "closed"),
    (f"{ISSUE}/reopened@2024-03-06T11:00:00Z", REOPENED, "open"),
    (f"{ISSUE}/closed@2024-03-10T12:00:00Z", CLOSED_AGAIN, "closed"),
]
NEW_PERIODS = [
    (FlowState.WAITING.value, CREATED, CLOSED),
    (FlowState.DONE.value, CLOSED, REOPENED),
    (FlowState.WAITING.value, REOPENED, CLOSED_AGAIN),
    (FlowState.DONE.value, CLOSED_AGAIN, None),
]


def test_upgrade_deletes_old_issue_event_transitions_and_their_timeline(
    open_store: Callable[[str], Store], engine: str
) -> None:
    store = _store_at_version_8(open_store, engine)
    assert len(_transitions(store)) == 3
    assert len(_periods(store)) == 3

    assert store.migrate()[0] == 9  # then any later versions

    assert _transitions(store) == []
    assert _periods(store) == []  # the derived timeline follows the deleted transitions
    assert store.query("SELECT count(*) FROM flow_items WHERE item_id = ?", [ITEM]) == [(0,)]
    assert store.count("work_item") == 1  # only transitions of the old form go


def test_replay_after_upgrade_gives_exactly_the_new_transitions_and_flow_times(
    open_store: Callable[[str], Store], engine: str
) -> None:
    store = _store_at_version_8(open_store, engine)
    store.migrate()

    replay(store, "gh", rules=RULES)

    assert _transitions(store) == NEW_TRANSITIONS
    assert _periods(store) == NEW_PERIODS
    # Committed (waiting) from the opening, done at the issue's closed_at: 9 days 3 hours.
    times = flow_time(store, MARCH, work_start="waiting")
    assert (times.flow_time.count, times.flow_time.p50) == (1, (9 * 24 + 3) * 3600.0)
    assert times.lead_time.p50 == (9 * 24 + 3) * 3600.0


def test_upgrade_of_a_store_synced_before_and_after_the_new_ids_leaves_only_the_new(
    open_store: Callable[[str], Store], engine: str
) -> None:
    store = _store_at_version_8(open_store, engine)
    replay(store, "gh", rules=RULES)  # today's normalizer writes its ids beside the old ones
    assert len(_transitions(store)) == 7
    doubled = flow_time(store, MARCH, work_start="waiting")
    assert doubled.lead_time.p50 == (9 * 24 + 3) * 3600.0 + 1  # done at the old, later event's time

    assert store.migrate()[0] == 9  # then any later versions

    assert _transitions(store) == NEW_TRANSITIONS
    assert _periods(store) == NEW_PERIODS
    assert flow_time(store, MARCH, work_start="waiting").lead_time.p50 == (9 * 24 + 3) * 3600.0
