"""Where ServiceNow incidents become `Incident`s and change requests `Release`s and `Deployment`s.

Record ids, under source ``servicenow``: ``incident/SYS_ID`` (Incident), ``change_request/SYS_ID``
(Release, and Deployment), ``incident/SYS_ID/caused_by`` (TraceLink), ``user/SYS_ID`` (Person, Identity).

A **change request** is the approved, scheduled scope of a production change, so it is a `Release`
(planned → in progress → released, or canceled) carrying its service, its implementation window
(``work_start``..``work_end``, else ``start_date``..``end_date``, bound by bound), its ``approval`` and its
``correlation_id``: the linker ties it to the deployments it covers (docs/traceability.md). Where
ServiceNow is the record of what reached production (`change_requests_as_deployments`, the default), an
implemented change request is also a `Deployment` of its service (business service, else configuration
item) to `change_environment`, with the Release as its `release_id` — counted by the DORA figures. Turn
it off when a pipeline tool already records the deployments, or they would be counted twice.

A service is named as Obeya knows it: the connection's `service_names` maps a ServiceNow business service
or configuration item name to the service the pipelines deploy (the name itself when it is not listed),
for incidents, change requests and their deployments alike.

An incident whose ``caused_by`` names a change request says which change caused it: a `TraceLink`
incident → release (``caused_by_change``), ``change_caused`` True, and, with deployments on,
``caused_by_deployment_id`` — the explicit attribution the linker prefers over its time rule.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from obeya.connectors.base import Normalized
from obeya.connectors.incidents import SETTINGS, IncidentSettings, person, settings_of
from obeya.connectors.servicenow.collector import SOURCE, display, value
from obeya.connectors.times import parse_time
from obeya.model.ids import record_id
from obeya.model.records import Deployment, Incident, RawEvent, Record, Release, TraceLink
from obeya.normalize.rules import MappingRules

DEFAULT_SEVERITY = {"1": "sev1", "2": "sev2", "3": "sev3", "4": "sev4", "5": "sev4"}
"""Incident priority value (1 - Critical .. 5 - Planning) → severity."""
INCIDENT_STATES = {
    "1": "open",
    "2": "acknowledged",
    "3": "acknowledged",
    "6": "resolved",
    "7": "closed",
    "8": "canceled",
}
"""Incident state value (New, In Progress, On Hold, Resolved, Closed, Canceled) → status."""
PLANNED, IMPLEMENTING, CLOSED, CANCELED = {"-5", "-4", "-3", "-2"}, {"-1", "0"}, "3", "4"
"""Change request state values: New, Assess, Authorize, Scheduled; Implement, Review; Closed; Canceled."""
SUCCESSFUL = {"successful", "successful_issues"}
Item = dict[str, Any]


def _url(settings: IncidentSettings, table: str, sys_id: str) -> str | None:
    base = settings.options.get("base_url")
    return f"{base}/nav_to.do?uri={table}.do?sys_id={sys_id}" if base else None


def _time(item: Item, *names: str) -> Any:
    for name in names:
        moment = parse_time(value(item, name))
        if moment is not None:
            return moment
    return None


def _service(item: Item, settings: IncidentSettings) -> str | None:
    """The record's business service, else configuration item, as the connection's `service_names` map
    it."""
    name = display(item, "business_service") or display(item, "cmdb_ci")
    names = settings.options.get("service_names") or {}
    return str(names.get(name, name)) if name and isinstance(names, dict) else name


def incident(item: Item, settings: IncidentSettings, raw_event_id: str) -> list[Record]:
    """The `Incident` of a ServiceNow incident, and its `TraceLink` to the change that caused it."""
    sys_id = str(value(item, "sys_id"))
    service = _service(item, settings)
    priority = value(item, "priority")
    labels = [f"number:{value(item, 'number')}"]
    for name in ("priority", "impact", "urgency", "category"):
        shown = display(item, name)
        labels += [f"{name}:{shown}"] if shown else []
    group = display(item, "assignment_group")
    labels += [f"assignment_group:{group}"] if group else []
    state = value(item, "state") or "1"
    status = INCIDENT_STATES.get(state, (display(item, "state") or state).lower())
    created = _time(item, "opened_at", "sys_created_on")
    if created is None:
        raise ValueError("the incident has neither opened_at nor sys_created_on")
    resolved = _time(item, "resolved_at", "closed_at") if status in ("resolved", "closed") else None
    change = value(item, "caused_by")
    change_caused = settings.change_caused([service], labels)
    change_id = record_id(SOURCE, f"change_request/{change}") if change else None
    evidence = (
        f"ServiceNow: {value(item, 'number')} caused by {display(item, 'caused_by')}" if change else None
    )
    as_deployments = bool(settings.options.get("change_requests_as_deployments", True))
    records: list[Record] = [
        Incident(
            source=SOURCE,
            external_id=f"incident/{sys_id}",
            raw_event_id=raw_event_id,
            title=display(item, "short_description") or str(value(item, "number")),
            service=service,
            severity=settings.severity_of(priority, DEFAULT_SEVERITY),
            status=status,
            created_at=created,
            acknowledged_at=_time(item, "work_start"),
            resolved_at=resolved,
            caused_by_deployment_id=change_id if as_deployments and change_caused is None else None,
            cause_evidence=evidence,
            change_caused=True if change and change_caused is None else change_caused,
            labels=labels,
            url=_url(settings, "incident", sys_id),
        )
    ]
    if change_id and evidence:
        records.append(
            TraceLink(
                source=SOURCE,
                external_id=f"incident/{sys_id}/caused_by",
                raw_event_id=raw_event_id,
                from_kind="incident",
                from_id=record_id(SOURCE, f"incident/{sys_id}"),
                to_kind="release",
                to_id=change_id,
                link_kind="caused_by_change",
                evidence=evidence,
                confidence=1.0,
            )
        )
    return records


def change_request(
    item: Item, settings: IncidentSettings, rules: MappingRules, raw_event_id: str
) -> tuple[list[Record], str | None]:
    """The `Release` of a change request and, once implemented, its `Deployment`; with a reason when the
    deployment is left out."""
    sys_id = str(value(item, "sys_id"))
    state = value(item, "state") or "-5"
    close_code = (value(item, "close_code") or "").lower()
    if state == CANCELED or (state == CLOSED and close_code and close_code not in SUCCESSFUL):
        status = "canceled"
    elif state == CLOSED:
        status = "released"
    elif state in IMPLEMENTING:
        status = "in_progress"
    else:
        status = "planned"
    finished = _time(item, "work_end", "closed_at") if state == CLOSED else _time(item, "work_end")
    service = _service(item, settings)
    release = Release(
        source=SOURCE,
        external_id=f"change_request/{sys_id}",
        raw_event_id=raw_event_id,
        name=str(value(item, "number") or sys_id),
        status=status,
        planned_at=_time(item, "start_date"),
        released_at=finished if status == "released" else None,
        description=display(item, "short_description"),
        service=service,
        # the implementation window when it was worked, else the planned one, bound by bound
        window_start=_time(item, "work_start", "start_date"),
        window_end=_time(item, "work_end", "end_date"),
        approval=value(item, "approval"),
        correlation_id=value(item, "correlation_id"),
    )
    records: list[Record] = [release]
    if not settings.options.get("change_requests_as_deployments", True):
        return records, None
    started = _time(item, "work_start")
    if state in PLANNED or (state == CANCELED and started is None):
        return records, None  # not implemented (yet): no deployment, and nothing to report
    if not service:
        return records, "change request without a business service or configuration item: no deployment"
    if state == CANCELED:
        result = "canceled"
    elif close_code in SUCCESSFUL:
        result = "success"
    elif close_code:
        result = "failure"
    else:
        result = "running"
    environment = str(settings.options.get("change_environment") or "production")
    records.append(
        Deployment(
            source=SOURCE,
            external_id=f"change_request/{sys_id}",
            raw_event_id=raw_event_id,
            service=service,
            environment=environment,
            environment_class=rules.environment_class(environment),
            release_id=release.id,
            result=result,
            started_at=started or _time(item, "start_date"),
            finished_at=finished if result != "running" else None,
            url=_url(settings, "change_request", sys_id),
        )
    )
    return records, None


def normalize(
    events: Sequence[RawEvent], rules: MappingRules | None = None, context: Sequence[RawEvent] = ()
) -> Normalized:
    """The records of ServiceNow raw events; the connection's settings among `events` or `context`."""
    rules = rules or MappingRules()
    settings = settings_of(events, context)
    result = Normalized()
    for event in events:
        try:
            item = json.loads(event.payload)
            records: list[Record]
            if event.event_type == "incident":
                records = incident(item, settings, event.id)
            elif event.event_type == "change_request":
                records, reason = change_request(item, settings, rules, event.id)
                if reason:
                    result.skipped.append((event.id, reason))
            elif event.event_type == "user":
                key = str(item.get("value"))
                name = str(item.get("display_value") or key)
                records = person(SOURCE, SOURCE, key, name, event.id)
            elif event.event_type == SETTINGS:
                records = []
            else:
                result.skipped.append((event.id, f"no normalizer for {event.event_type!r}"))
                continue
        except (ValidationError, ValueError, KeyError, TypeError) as error:
            result.skipped.append((event.id, f"could not normalize: {type(error).__name__}: {error}"[:500]))
            continue
        result.records.extend(records)
        result.normalized_events += 1
    return result
