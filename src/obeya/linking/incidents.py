"""Incident attribution (docs/metrics.md, "Change failure rate"): incident → deployment, `caused_by`.

Explicit first: the incident's `caused_by_deployment_id`. Otherwise the time rule: the latest production
deployment (success or rolled back) of the incident's service that finished before the incident was
created, within the attribution window. Incidents marked ``change_caused = false`` are never attributed.
"""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa

from obeya.linking.derived import candidates, empty_candidates, fetch
from obeya.linking.rules import LinkingRules
from obeya.store.base import Store

EXPLICIT_CONFIDENCE = 1.0
TIME_RULE_CONFIDENCE = 0.6

_NOT_RULED_OUT = "(i.change_caused IS NULL OR i.change_caused = TRUE)"


def human_duration(span: timedelta) -> str:
    """A short duration: ``2h10m``, ``45m``, ``24h``, ``30s``; days only from two days (``3d4h``)."""
    seconds = int(span.total_seconds())
    days, seconds = divmod(seconds, 86400) if seconds >= 2 * 86400 else (0, seconds)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{seconds}s"


def incident_causes(store: Store, rules: LinkingRules) -> pa.Table:
    """incident → deployment candidates: explicit links (1.0), else the time rule (0.6)."""
    explicit = fetch(
        store,
        "SELECT i.id AS from_id, d.id AS to_id, i.cause_evidence AS evidence FROM incidents i "
        "JOIN deployments d ON d.id = i.caused_by_deployment_id "
        f"WHERE {_NOT_RULED_OUT}",
        (),
        pa.schema([("from_id", pa.string()), ("to_id", pa.string()), ("evidence", pa.string())]),
    )
    evidence = [e or "explicit: caused_by_deployment_id" for e in explicit["evidence"].to_pylist()]
    links = [candidates(explicit["from_id"], explicit["to_id"], evidence, EXPLICIT_CONFIDENCE)]

    window = rules.incident_attribution_window
    # The window is whole seconds in the SQL text (an integer, not user text): both engines parse it.
    seconds = int(window.total_seconds())
    rows = fetch(
        store,
        "SELECT incident_id, deployment_id, service, finished, created FROM ("
        "  SELECT i.id AS incident_id, d.id AS deployment_id, d.service AS service,"
        "    COALESCE(d.finished_at, d.started_at) AS finished, i.created_at AS created,"
        "    row_number() OVER (PARTITION BY i.id"
        "      ORDER BY COALESCE(d.finished_at, d.started_at) DESC, d.id DESC) AS rn"
        "  FROM incidents i JOIN deployments d ON d.service = i.service"
        "  WHERE i.caused_by_deployment_id IS NULL"
        f"    AND {_NOT_RULED_OUT}"
        "    AND d.environment_class = ? AND d.result IN ('success', 'rolled_back')"
        "    AND COALESCE(d.finished_at, d.started_at) < i.created_at"
        f"    AND COALESCE(d.finished_at, d.started_at) >= i.created_at - INTERVAL '{seconds} seconds'"
        ") ranked WHERE rn = 1",
        (rules.production_class,),
        pa.schema(
            [
                ("from_id", pa.string()),
                ("to_id", pa.string()),
                ("service", pa.string()),
                ("finished", pa.timestamp("us")),
                ("created", pa.timestamp("us")),
            ]
        ),
    )
    if rows.num_rows:
        evidence = [
            f"time rule: latest {rules.production_class} deployment of {service} finished "
            f"{human_duration(created - finished)} before the incident (window {human_duration(window)})"
            for service, finished, created in zip(
                rows["service"].to_pylist(),
                rows["finished"].to_pylist(),
                rows["created"].to_pylist(),
                strict=True,
            )
        ]
        links.append(candidates(rows["from_id"], rows["to_id"], evidence, TIME_RULE_CONFIDENCE))
    return pa.concat_tables(links) if links else empty_candidates()
