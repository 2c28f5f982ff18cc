"""Incident attribution (docs/metrics.md, "Change failure rate"): incident → deployment, `caused_by`.

Explicit first: the incident's `caused_by_deployment_id`; else a commit sha named in its `cause_evidence`
(the field where connectors and imports put the stated cause): the latest production deployment (success
or rolled back; of the incident's service when it names one) that finished before the incident was created
and either deployed that commit or shipped a change containing it. Otherwise the time rule: the latest
production deployment of the incident's service that finished before the incident was created, within
the attribution window. Incidents marked ``change_caused = false`` are never attributed.
"""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc

from obeya.linking.derived import candidates, empty_candidates, fetch
from obeya.linking.rules import LinkingRules
from obeya.store.base import Store

EXPLICIT_CONFIDENCE = 1.0
COMMIT_SHA_CONFIDENCE = 0.9
TIME_RULE_CONFIDENCE = 0.6

SHA_PATTERN = r"\b(?P<sha>[0-9a-f]{7,40})\b"
"""A commit sha in a cause (lowercased): 7 to 40 hexadecimal characters standing as a word of their own."""
_SHA_CHUNK = 500  # incidents per query: each is two parameters

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


def named_commits(store: Store) -> pa.Table:
    """The incidents (not attributed by deployment id, not ruled out) whose `cause_evidence` names a commit
    sha (`SHA_PATTERN`, the first one): columns ``incident_id`` and ``sha`` (lowercase)."""
    stated = fetch(
        store,
        "SELECT i.id, i.cause_evidence FROM incidents i "
        f"WHERE i.caused_by_deployment_id IS NULL AND i.cause_evidence IS NOT NULL AND {_NOT_RULED_OUT}",
        (),
        pa.schema([("id", pa.string()), ("cause_evidence", pa.string())]),
    )
    shas = pc.struct_field(pc.extract_regex(pc.utf8_lower(stated["cause_evidence"]), SHA_PATTERN), [0])
    found = pc.is_valid(shas)
    return pa.table({"incident_id": stated["id"].filter(found), "sha": shas.filter(found)})


def commit_causes(store: Store, rules: LinkingRules) -> pa.Table:
    """incident → deployment candidates for the incidents whose cause names a commit sha (0.9): the latest
    production deployment (success or rolled back) finished before the incident, of its service when it
    has one, that deployed the commit (its `commit_sha` starts with the sha) or shipped a change whose
    commit, merge commit or head it is. The sha may be short (from 7 characters) or full."""
    named = named_commits(store)
    found = []
    for start in range(0, named.num_rows, _SHA_CHUNK):
        chunk = named.slice(start, _SHA_CHUNK)
        values = ", ".join("(?, ?)" for _ in range(chunk.num_rows))
        params = [
            v
            for pair in zip(*(chunk[c].to_pylist() for c in ("incident_id", "sha")), strict=True)
            for v in pair
        ]
        found.append(
            fetch(
                store,
                _COMMIT_CAUSE_SQL.format(values=values),
                [*params, rules.production_class],
                pa.schema(
                    [
                        ("from_id", pa.string()),
                        ("to_id", pa.string()),
                        ("sha", pa.string()),
                        ("change_label", pa.string()),
                    ]
                ),
            )
        )
    if not found:
        return empty_candidates()
    rows = pa.concat_tables(found)
    evidence = [
        f"commit sha: the cause names {sha[:12]}, "
        + (f"in {change}, which this deployment shipped" if change else "this deployment's commit")
        for sha, change in zip(rows["sha"].to_pylist(), rows["change_label"].to_pylist(), strict=True)
    ]
    return candidates(rows["from_id"], rows["to_id"], evidence, COMMIT_SHA_CONFIDENCE)


def _sha_match(column: str) -> str:
    """SQL: `column` is the commit ``n.sha`` names (the first 7 characters equal, for a hash join, then
    the whole sha a prefix)."""
    return f"substr(LOWER({column}), 1, 7) = substr(n.sha, 1, 7) AND LOWER({column}) LIKE n.sha || '%'"


_LABEL = "ch.repo || '#' || CAST(ch.number AS VARCHAR)"
_COMMIT_CAUSE_SQL = f"""WITH named(incident_id, sha) AS (VALUES {{values}}),
hits AS (
    SELECT n.incident_id, d.id AS deployment_id, n.sha, NULL AS change_label
    FROM named n JOIN deployments d ON {_sha_match("d.commit_sha")}
    UNION ALL
    SELECT n.incident_id, dc.deployment_id, n.sha, {_LABEL}
    FROM named n JOIN change_commits cc ON {_sha_match("cc.commit_sha")}
    JOIN changes ch ON ch.id = cc.change_id JOIN deployment_changes dc ON dc.change_id = ch.id
    UNION ALL
    SELECT n.incident_id, dc.deployment_id, n.sha, {_LABEL}
    FROM named n JOIN changes ch ON {_sha_match("ch.merge_commit_sha")}
    JOIN deployment_changes dc ON dc.change_id = ch.id
    UNION ALL
    SELECT n.incident_id, dc.deployment_id, n.sha, {_LABEL}
    FROM named n JOIN changes ch ON {_sha_match("ch.head_sha")}
    JOIN deployment_changes dc ON dc.change_id = ch.id
),
ranked AS (
    SELECT h.incident_id, h.deployment_id, h.sha, h.change_label,
           row_number() OVER (PARTITION BY h.incident_id ORDER BY COALESCE(d.finished_at, d.started_at) DESC,
                              h.change_label NULLS FIRST, d.id DESC) AS rn
    FROM hits h JOIN deployments d ON d.id = h.deployment_id JOIN incidents i ON i.id = h.incident_id
    WHERE d.environment_class = ? AND d.result IN ('success', 'rolled_back')
      AND COALESCE(d.finished_at, d.started_at) < i.created_at
      AND (i.service IS NULL OR d.service = i.service)
)
SELECT incident_id, deployment_id, sha, change_label FROM ranked WHERE rn = 1"""


def incident_causes(store: Store, rules: LinkingRules) -> pa.Table:
    """incident → deployment candidates: explicit links by deployment id (1.0), else by a commit sha the
    cause names (0.9), else the time rule (0.6)."""
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
    by_commit = commit_causes(store, rules)
    links.append(by_commit)

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
    rows = rows.filter(pc.invert(pc.is_in(rows["from_id"], value_set=by_commit["from_id"].combine_chunks())))
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
