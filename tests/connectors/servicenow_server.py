"""A local ServiceNow Table API serving records built from ServiceNow's documented examples.

There is **no ServiceNow recording**. The records below follow the documented Table API answers
(``GET /api/now/table/{tableName}``: ``{"result": [...]}``, ``X-Total-Count``; with
``sysparm_display_value=all`` every field is ``{"display_value", "value"}``; 32-hex ``sys_id``s;
``INC``/``CHG`` numbers; incident ``state`` 1/2/3/6/7/8, ``priority`` 1-5; change request ``state``
-5..4 and ``close_code``; times ``YYYY-MM-DD HH:MM:SS`` in UTC); their values are made up.

The server filters on the ``sysparm_query`` clauses the connector sends (``sys_updated_on>=``,
``business_service.nameIN``, ``ORDERBYsys_updated_on``, ``ORDERBYsys_id``), pages with
``sysparm_offset``/``sysparm_limit`` and answers 401 without the right basic auth or bearer token.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from loopback import LoopbackServer

USER, PASSWORD, BEARER = "obeya.integration", "servicenow-test-password", "servicenow-test-oauth-token"
Item = dict[str, Any]


def _field(value: str | None, display: str | None = None) -> Item:
    return {"value": value or "", "display_value": display if display is not None else (value or "")}


def _ref(sys_id: str, name: str) -> Item:
    return {"value": sys_id, "display_value": name}


BETH = _ref("46d44a23a9fe19810012d100cca80666", "Beth Anglin")
DAVID = _ref("5137153cc611227c000bbd1bd8cd2007", "David Loo")
EMAIL = _ref("27d32778c0a8000b00db970eeaa60f16", "Email")
SAP = _ref("26da329f0a0a0bb400f69d8159bc753d", "SAP Enterprise Services")
CHANGE_OK, CHANGE_PLANNED, CHANGE_FAILED = (
    "c286d61347c12200e0ef563dbb9a71df",
    "a9e30c7dc61122760116894de7bcc7bd",
    "46eaa7c9a9fe198100bb5d76e8a2e0a6",
)


def incident(sys_id: str, number: str, updated: str, **fields: Item) -> Item:
    record: Item = {
        "sys_id": _field(sys_id),
        "number": _field(number),
        "short_description": _field("Unable to send or receive email."),
        "state": _field("1", "New"),
        "priority": _field("3", "3 - Moderate"),
        "impact": _field("2", "2 - Medium"),
        "urgency": _field("2", "2 - Medium"),
        "category": _field("inquiry", "Inquiry / Help"),
        "business_service": _field(None),
        "cmdb_ci": _field(None),
        "assignment_group": _ref("287ebd7da9fe198100f92cc8d1d2154e", "Network"),
        "assigned_to": _field(None),
        "opened_by": BETH,
        "resolved_by": _field(None),
        "caused_by": _field(None),
        "opened_at": _field("2024-03-01 08:00:00"),
        "work_start": _field(None),
        "resolved_at": _field(None),
        "closed_at": _field(None),
        "sys_created_on": _field("2024-03-01 08:00:00"),
        "sys_updated_on": _field(updated),
    }
    record.update(fields)
    return record


def change(sys_id: str, number: str, updated: str, **fields: Item) -> Item:
    record: Item = {
        "sys_id": _field(sys_id),
        "number": _field(number),
        "short_description": _field("Upgrade the email server"),
        "state": _field("-2", "Scheduled"),
        "close_code": _field(None),
        "business_service": EMAIL,
        "cmdb_ci": _ref("281190e3c0a8000b003f593aa3f20ca6", "EXCH-SD-05"),
        "assigned_to": DAVID,
        "opened_by": BETH,
        "approval": _field("approved", "Approved"),
        "correlation_id": _field(None),
        "start_date": _field("2024-02-28 22:00:00"),
        "end_date": _field("2024-02-28 23:00:00"),
        "work_start": _field(None),
        "work_end": _field(None),
        "closed_at": _field(None),
        "sys_updated_on": _field(updated),
    }
    record.update(fields)
    return record


def documented_records() -> dict[str, list[Item]]:
    """Three incidents and three change requests shaped like the documented examples."""
    incidents = [
        incident(
            "9c573169c611228700193229fff72400",
            "INC0010001",
            "2024-03-01 10:00:00",
            short_description=_field("Email server down after upgrade"),
            state=_field("6", "Resolved"),
            priority=_field("1", "1 - Critical"),
            business_service=EMAIL,
            assigned_to=DAVID,
            resolved_by=DAVID,
            caused_by=_ref(CHANGE_OK, "CHG0030001"),
            opened_at=_field("2024-03-01 08:00:00"),
            work_start=_field("2024-03-01 08:10:00"),
            resolved_at=_field("2024-03-01 09:30:00"),
        ),
        incident(
            "e8caedcbc0a80164017df472f39eaed1",
            "INC0010002",
            "2024-03-02 12:00:00",
            short_description=_field("SAP slow: cloud provider region degraded"),
            state=_field("2", "In Progress"),
            priority=_field("2", "2 - High"),
            category=_field("provider-outage", "Provider outage"),
            business_service=SAP,
            opened_at=_field("2024-03-02 11:00:00"),
        ),
        incident(
            "ef43c6d40a0a0b5700c77f9bf387afe3",
            "INC0010003",
            "2024-03-02 12:00:00",  # the same second as INC0010002: ties are paged by sys_id
            short_description=_field("Printer jams"),
            priority=_field("4", "4 - Low"),
            cmdb_ci=_ref("b0c25d1bc0a800090168be1bfcdcd759", "PRINTER-3F"),
            opened_at=_field("2024-03-02 11:30:00"),
        ),
    ]
    changes = [
        change(
            CHANGE_OK,
            "CHG0030001",
            "2024-03-01 07:00:00",
            state=_field("3", "Closed"),
            close_code=_field("successful", "Successful"),
            work_start=_field("2024-02-28 22:05:00"),
            work_end=_field("2024-02-28 22:50:00"),
            closed_at=_field("2024-03-01 07:00:00"),
        ),
        change(
            CHANGE_PLANNED,
            "CHG0030002",
            "2024-03-03 09:00:00",
            approval=_field("requested", "Requested"),
            start_date=_field("2024-03-10 22:00:00"),
            end_date=_field("2024-03-10 23:00:00"),
        ),
        change(
            CHANGE_FAILED,
            "CHG0030003",
            "2024-03-04 09:00:00",
            short_description=_field("Patch SAP kernel"),
            business_service=SAP,
            correlation_id=_field("sap/kernel/actions/runs/4401"),  # set by the pipeline that raised it
            state=_field("3", "Closed"),
            close_code=_field("unsuccessful", "Unsuccessful"),
            work_start=_field("2024-03-03 22:00:00"),
            work_end=_field("2024-03-03 23:00:00"),
            closed_at=_field("2024-03-04 09:00:00"),
        ),
    ]
    return {"incident": incidents, "change_request": changes}


class FakeServiceNow(LoopbackServer):
    """A ServiceNow instance holding the documented-example records."""

    def __init__(self, page_size: int = 2) -> None:
        super().__init__()
        self.page_size = page_size
        self.tables = documented_records()

    def update(self, table: str, number: str, **fields: Item) -> None:
        with self._lock:
            record = next(r for r in self.tables[table] if r["number"]["value"] == number)
            record.update(copy.deepcopy(fields))

    def authorized(self, headers: dict[str, str]) -> bool:
        basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return headers.get("Authorization") in (basic, f"Bearer {BEARER}")

    def unauthorized(self) -> Item:
        return {
            "error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"},
            "status": "failure",
        }

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        prefix = "/api/now/table/"
        if not path.startswith(prefix) or path[len(prefix) :] not in self.tables:
            return 400, {"error": {"message": "Invalid table"}, "status": "failure"}, {}
        found = list(self.tables[path[len(prefix) :]])
        order: list[str] = []
        for clause in query.get("sysparm_query", [""])[-1].split("^"):
            if clause.startswith("ORDERBY"):
                order.append(clause[len("ORDERBY") :])
            elif clause.startswith("sys_updated_on>="):
                since = clause.split(">=", 1)[1]
                found = [r for r in found if r["sys_updated_on"]["value"] >= since]
            elif clause.startswith("business_service.nameIN"):
                names = set(clause.split("IN", 1)[1].split(","))
                found = [r for r in found if r["business_service"]["display_value"] in names]
            elif clause:
                return 400, {"error": {"message": f"this server does not know {clause!r}"}}, {}
        found.sort(key=lambda r: tuple(r[name]["value"] for name in order))
        offset = int(query.get("sysparm_offset", ["0"])[-1])
        limit = min(int(query.get("sysparm_limit", ["10000"])[-1]), self.page_size)
        return 200, {"result": found[offset : offset + limit]}, {"X-Total-Count": str(len(found))}
