"""Where a Jira issue becomes a `WorkItem` with its status transitions: raw events to records, no HTTP.

Pure functions of the raw events, the stored catalogs (statuses, issue types, fields) and the mapping
rules: a sync normalizes each page as it stores it, and replay normalizes the stored raw events again,
with the same result.

A status is placed by the explicit rules of obeya.yaml first; otherwise by its Jira status category
(``new`` → new, ``indeterminate`` → active, ``done`` → done, but a done status named like a cancellation
stays canceled), and only without a category by the name heuristics. Either way it is reported as
unmapped in `MappingRules.unmapped`, with where it was placed.

Record ids, all under source ``jira``: ``KEY`` (WorkItem, e.g. ``EE-1``), ``KEY/created`` and
``KEY/HISTORY/N`` (StatusTransition), ``sprint/ID`` (Plan), ``sprint/ID/KEY`` (PlanItem),
``link/ID`` (TraceLink), ``user/ACCOUNT`` (Person, Identity).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from obeya.connectors.base import Normalized
from obeya.connectors.jira.collector import SOURCE, user_key
from obeya.connectors.raw import event_key
from obeya.connectors.times import required_time
from obeya.model.ids import record_id
from obeya.model.records import (
    Identity,
    Person,
    Plan,
    PlanItem,
    RawEvent,
    Record,
    StatusTransition,
    TraceLink,
    WorkItem,
)
from obeya.model.vocabulary import FlowState
from obeya.normalize.rules import MappingRules, StatusMapping, UnmappedStatus

Item = dict[str, Any]

CATEGORY_STATES = {"new": FlowState.NEW, "indeterminate": FlowState.ACTIVE, "done": FlowState.DONE}
"""Jira status category key → flow state, for statuses obeya.yaml does not map."""

REFERENCE_TYPES = ("status", "issue_type", "field")
"""Catalog raw events: read as reference data, they give no records of their own."""

_STORY_POINT_FIELDS = {"story points", "story point estimate"}
_DC_SPRINT = re.compile(r"\[(.*)\]\s*$")


class _Skip(Exception):
    """An event that gives no record, with the reason."""


# --- catalogs and status placement ----------------------------------------------------------------------


@dataclass
class Catalog:
    """What the catalogs say: status categories, issue types' untranslated names, special fields."""

    status_categories: dict[str, str] = field(default_factory=dict)
    issue_types: dict[str, str] = field(default_factory=dict)
    sprint_fields: set[str] = field(default_factory=set)
    epic_link_fields: set[str] = field(default_factory=set)
    story_point_fields: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, events: Iterable[RawEvent]) -> Catalog:
        """The catalog held by the reference events among `events`."""
        catalog = cls()
        for event in events:
            if event.event_type not in REFERENCE_TYPES:
                continue
            item = json.loads(event.payload)
            if event.event_type == "status":
                category = (item.get("statusCategory") or {}).get("key")
                if category:
                    catalog.status_categories[str(item["id"])] = str(category)
            elif event.event_type == "issue_type":
                catalog.issue_types[str(item["id"])] = str(item.get("untranslatedName") or item["name"])
            else:
                custom = str((item.get("schema") or {}).get("custom") or "")
                if custom.endswith(":gh-sprint"):
                    catalog.sprint_fields.add(str(item["id"]))
                elif custom.endswith(":gh-epic-link"):
                    catalog.epic_link_fields.add(str(item["id"]))
                if str(item.get("name", "")).strip().lower() in _STORY_POINT_FIELDS:
                    catalog.story_point_fields.append(str(item["id"]))
        return catalog


class StatusPlacer:
    """Places Jira statuses: explicit rules, then the status category, then the name heuristics."""

    def __init__(self, rules: MappingRules, catalog: Catalog) -> None:
        self.rules = rules
        self.catalog = catalog
        self._placed: dict[tuple[str, str | None], StatusMapping] = {}

    def place(self, name: str, status_id: str | None, embedded_category: str | None = None) -> StatusMapping:
        """Where status `name` (id `status_id`) puts an item; the catalog's category wins over the one
        embedded in an issue (the catalog is read on every sync, an issue keeps what it had)."""
        category = self.catalog.status_categories.get(status_id or "") or embedded_category
        cached = self._placed.get((name, category))
        if cached is not None:
            return cached
        # A probe with the explicit rules only tells an explicit mapping from a heuristic guess.
        probe = MappingRules(statuses=self.rules.statuses)
        mapping = probe.status(name)
        unmapped = next(iter(probe.unmapped), None)
        if unmapped is not None:
            state = CATEGORY_STATES.get(category or "")
            if state is not None and not (
                state is FlowState.DONE and mapping.flow_state is FlowState.CANCELED
            ):
                mapping = StatusMapping(state, mapping.stage if mapping.flow_state is state else None)
            self.rules.unmapped[unmapped] = UnmappedStatus(name, mapping)
        self._placed[(name, category)] = mapping
        return mapping


# --- people ----------------------------------------------------------------------------------------------


def person_id(user: Any) -> str | None:
    """The id of the `Person` of a Jira account object (None when there is none)."""
    key = user_key(user)
    return record_id(SOURCE, f"user/{key}") if key else None


def _user(user: Item, raw_event_id: str) -> list[Record]:
    key = user_key(user)
    if key is None:
        raise _Skip("account without an id")
    email = user.get("emailAddress") or None
    person = Person(
        source=SOURCE,
        external_id=f"user/{key}",
        raw_event_id=raw_event_id,
        display_name=user.get("displayName") or user.get("name") or key,
        email=email,
        is_bot=user.get("accountType") == "app",
    )
    identity = Identity(
        source=SOURCE,
        external_id=f"user/{key}",
        raw_event_id=raw_event_id,
        person_id=person.id,
        tool="jira",
        username=user.get("name") or key,
        email=email,
    )
    return [person, identity]


# --- sprints ---------------------------------------------------------------------------------------------


def plan_id(sprint_id: int | str) -> str:
    """The id of the `Plan` of a Jira sprint."""
    return record_id(SOURCE, f"sprint/{sprint_id}")


def _sprint(sprint: Item, raw_event_id: str) -> list[Record]:
    starts, ends = sprint.get("startDate"), sprint.get("endDate")
    if not starts or not ends:
        raise _Skip("sprint not started yet (no dates)")
    return [
        Plan(
            source=SOURCE,
            external_id=f"sprint/{sprint['id']}",
            raw_event_id=raw_event_id,
            name=sprint.get("name") or f"Sprint {sprint['id']}",
            plan_type="sprint",
            starts_at=required_time(starts),
            ends_at=required_time(ends),
        )
    ]


def _dc_sprint(text: str) -> Item | None:
    """A Data Center sprint written as ``...Sprint@1a2b[id=1,state=CLOSED,name=S1,startDate=...]``."""
    found = _DC_SPRINT.search(text)
    if not found:
        return None
    values = dict(part.split("=", 1) for part in found.group(1).split(",") if "=" in part)
    if not values.get("id", "").isdigit():
        return None
    start = values.get("startDate")
    return {
        "id": int(values["id"]),
        "name": values.get("name"),
        "startDate": None if start in (None, "<null>") else start,
    }


def _sprints_of(fields: Item, catalog: Catalog) -> dict[int, Item]:
    """The sprints an issue is or was in, by id: the Agile API's ``sprint`` and ``closedSprints``, the
    Sprint custom field (named by the field catalog, else recognised by its shape)."""
    found: dict[int, Item] = {}
    candidates: list[Any] = [fields.get("sprint"), *(fields.get("closedSprints") or [])]
    for name, value in fields.items():
        if not name.startswith("customfield_") or not isinstance(value, list):
            continue
        if name in catalog.sprint_fields or any(
            isinstance(v, dict) and "state" in v and "id" in v for v in value
        ):
            candidates.extend(value)
    for candidate in candidates:
        sprint = _dc_sprint(candidate) if isinstance(candidate, str) else candidate
        if isinstance(sprint, dict) and isinstance(sprint.get("id"), int):
            found.setdefault(sprint["id"], sprint)
    return found


def _sprint_ids(value: Any) -> set[int]:
    return {int(part) for part in str(value or "").replace(" ", "").split(",") if part.isdigit()}


def _text(value: Any) -> str:
    """Text as a store can keep it: PostgreSQL refuses NUL characters, which real summaries hold."""
    return str(value or "").replace("\x00", "")


# --- issues ----------------------------------------------------------------------------------------------


def work_item_id(key: str) -> str:
    """The id of the `WorkItem` of the Jira issue `key`."""
    return record_id(SOURCE, key)


@dataclass(frozen=True)
class _Change:
    at: datetime
    history_id: str
    index: int
    item: Item
    author: Any


def _changes(histories: Iterable[Item], wanted: Callable[[Item], bool]) -> list[_Change]:
    """The changelog's items that `wanted` picks, oldest first."""
    changes = [
        _Change(required_time(h["created"]), str(h["id"]), i, item, h.get("author"))
        for h in histories
        for i, item in enumerate(h.get("items") or [])
        if wanted(item)
    ]
    return sorted(changes, key=lambda c: (c.at, int(c.history_id) if c.history_id.isdigit() else 0, c.index))


def _is_status(item: Item) -> bool:
    return item.get("fieldId") == "status" or (item.get("fieldId") is None and item.get("field") == "status")


def _parent_key(fields: Item, catalog: Catalog) -> str | None:
    parent = fields.get("parent")
    if isinstance(parent, dict) and parent.get("key"):
        return str(parent["key"])
    epic = fields.get("epic")
    if isinstance(epic, dict) and epic.get("key"):
        return str(epic["key"])
    for name in sorted(catalog.epic_link_fields):
        if isinstance(fields.get(name), str) and fields[name]:
            return str(fields[name])
    return None


def _story_points(fields: Item, catalog: Catalog) -> float | None:
    for name in catalog.story_point_fields:
        value = fields.get(name)
        if isinstance(value, int | float):
            return float(value)
    return None


def _issue(
    issue: Item, raw_event_id: str, histories: list[Item], placer: StatusPlacer, catalog: Catalog
) -> list[Record]:
    key = str(issue["key"])
    fields: Item = issue.get("fields") or {}
    status: Item = fields.get("status") or {}
    status_id = str(status.get("id") or "")
    current = placer.place(status["name"], status_id, (status.get("statusCategory") or {}).get("key"))
    created = required_time(fields["created"])
    item_id = work_item_id(key)

    def place(name: str | None, sid: str | None) -> StatusMapping:
        if sid == status_id and name == status["name"]:
            return current
        return placer.place(name or f"status {sid}", sid)

    transitions: list[StatusTransition] = []
    changes = _changes(histories, _is_status)
    first = changes[0].item if changes else None
    initial_name = str(first.get("fromString") or "") if first else status["name"]
    initial_id = str(first.get("from") or "") if first else status_id
    initial = place(initial_name, initial_id)
    transitions.append(
        StatusTransition(
            source=SOURCE,
            external_id=f"{key}/created",
            raw_event_id=raw_event_id,
            work_item_id=item_id,
            at=created,
            to_status=initial_name or "created",
            to_flow_state=initial.flow_state,
            to_stage=initial.stage,
            author_id=person_id(fields.get("creator") or fields.get("reporter")),
        )
    )
    for change in changes:
        before = place(change.item.get("fromString"), str(change.item.get("from") or ""))
        after = place(change.item.get("toString"), str(change.item.get("to") or ""))
        transitions.append(
            StatusTransition(
                source=SOURCE,
                external_id=f"{key}/{change.history_id}/{change.index}",
                raw_event_id=raw_event_id,
                work_item_id=item_id,
                at=change.at,
                from_status=change.item.get("fromString") or None,
                to_status=change.item.get("toString") or f"status {change.item.get('to')}",
                from_flow_state=before.flow_state,
                to_flow_state=after.flow_state,
                from_stage=before.stage,
                to_stage=after.stage,
                author_id=person_id(change.author),
            )
        )

    def last_entry(state: FlowState) -> datetime | None:
        if current.flow_state is not state:
            return None
        entries = [t.at for t in transitions if t.to_flow_state is state]
        resolved = fields.get("resolutiondate")
        return max(entries) if entries else (required_time(resolved) if resolved else None)

    started = [t.at for t in transitions if t.to_flow_state is FlowState.ACTIVE]
    labels = [str(label) for label in fields.get("labels") or []]
    issue_type: Item = fields.get("issuetype") or {}
    type_name = str(issue_type.get("name") or "issue")
    untranslated = catalog.issue_types.get(str(issue_type.get("id")), type_name)
    parent = _parent_key(fields, catalog)
    points = _story_points(fields, catalog)
    work_item = WorkItem(
        source=SOURCE,
        external_id=key,
        raw_event_id=raw_event_id,
        key=key,
        title=_text(fields.get("summary")),
        project=str((fields.get("project") or {}).get("key") or key.rsplit("-", 1)[0]),
        tool_type=type_name,
        flow_item_type=placer.rules.flow_item_type(untranslated, labels),
        status=status["name"],
        flow_state=current.flow_state,
        stage=current.stage,
        parent_id=work_item_id(parent) if parent else None,
        assignee_id=person_id(fields.get("assignee")),
        labels=labels,
        priority=(fields.get("priority") or {}).get("name"),
        story_points=points,
        created_at=created,
        started_at=min(started) if started else None,
        done_at=last_entry(FlowState.DONE),
        canceled_at=last_entry(FlowState.CANCELED),
        updated_at=required_time(fields["updated"]) if fields.get("updated") else None,
    )
    return [
        work_item,
        *transitions,
        *_plan_items(key, fields, histories, created, raw_event_id, points, catalog),
        *_links(fields.get("issuelinks") or [], key, raw_event_id),
    ]


def _plan_items(
    key: str,
    fields: Item,
    histories: list[Item],
    created: datetime,
    raw_event_id: str,
    points: float | None,
    catalog: Catalog,
) -> list[Record]:
    """The issue in each of its sprints: committed if it was in the sprint when it started, added after
    start if the changelog (else its creation) puts it there later."""
    sprint_changes = _changes(
        histories,
        lambda item: (
            str(item.get("field", "")).lower() == "sprint" or item.get("fieldId") in catalog.sprint_fields
        ),
    )
    records: list[Record] = []
    for sprint_id, sprint in sorted(_sprints_of(fields, catalog).items()):
        added_at = created
        for change in sprint_changes:
            if sprint_id in _sprint_ids(change.item.get("to")) - _sprint_ids(change.item.get("from")):
                added_at = change.at
        start = sprint.get("startDate")
        records.append(
            PlanItem(
                source=SOURCE,
                external_id=f"sprint/{sprint_id}/{key}",
                raw_event_id=raw_event_id,
                plan_id=plan_id(sprint_id),
                work_item_id=work_item_id(key),
                added_after_start=bool(start) and added_at > required_time(str(start)),
                planned_value=points,
            )
        )
    return records


def _links(links: list[Item], key: str, raw_event_id: str) -> list[Record]:
    """Issue links, from the issue on their outward side (each link is listed on both issues)."""
    records: list[Record] = []
    for link in links:
        outward = link.get("outwardIssue")
        if not isinstance(outward, dict) or not outward.get("key"):
            continue
        link_type: Item = link.get("type") or {}
        verb = link_type.get("outward") or link_type.get("name") or "links to"
        records.append(
            TraceLink(
                source=SOURCE,
                external_id=f"link/{link['id']}",
                raw_event_id=raw_event_id,
                from_kind="work_item",
                from_id=work_item_id(key),
                to_kind="work_item",
                to_id=work_item_id(str(outward["key"])),
                link_kind=str(link_type.get("name") or verb),
                evidence=f"Jira issue link: {verb}",
                confidence=1.0,
            )
        )
    return records


# --- all together ----------------------------------------------------------------------------------------


def normalize(
    events: Iterable[RawEvent], rules: MappingRules | None = None, context: Sequence[RawEvent] = ()
) -> Normalized:
    """The records of Jira raw events.

    An issue's fetched changelog (``changelog`` events) must be among `events` with it, as the collector
    stores them in one batch; `context` holds the stored catalogs (statuses, issue types, fields). An
    event that cannot be normalized is reported in `skipped`; it never stops the others.
    """
    rules = rules or MappingRules()
    events = list(events)
    catalog = Catalog.of([*context, *events])
    placer = StatusPlacer(rules, catalog)
    fetched: dict[str, dict[str, Item]] = defaultdict(dict)
    for event in events:
        if event.event_type == "changelog":
            issue_id = event_key(event).split("/")[0]
            history = json.loads(event.payload)
            fetched[issue_id][str(history["id"])] = history
    result = Normalized()
    for event in events:
        try:
            item = json.loads(event.payload)
            if event.event_type == "issue":
                histories = {str(h["id"]): h for h in (item.get("changelog") or {}).get("histories") or []}
                histories.update(fetched.get(event_key(event), {}))
                records = _issue(item, event.id, list(histories.values()), placer, catalog)
            elif event.event_type == "sprint":
                records = _sprint(item, event.id)
            elif event.event_type == "user":
                records = _user(item, event.id)
            elif event.event_type in (*REFERENCE_TYPES, "changelog"):
                records = []  # read above: reference data, or part of its issue
            else:
                raise _Skip(f"no normalizer for {event.event_type!r}")
        except _Skip as skip:
            result.skipped.append((event.id, str(skip)))
            continue
        except (ValidationError, ValueError, KeyError, TypeError, IndexError) as error:
            result.skipped.append((event.id, f"could not normalize: {type(error).__name__}: {error}"[:500]))
            continue
        result.records.extend(records)
        result.normalized_events += 1
    return result
