"""Change requests: deployment → release (`covered_by`), the change record a deployment was made under.

A change request (an ITSM change, e.g. ServiceNow's ``CHG0030001``) is stored as a `Release` with the
service it changes, its implementation window, its approval and a correlation id. A deployment is tied to
it explicitly first:

- by correlation id (1.0): the change's `correlation_id` is the deployment's id or external id, its
  pipeline run's id or external id, or the deployment's commit sha;
- by release (1.0): the deployment's `release_id` is the change request (its name is a change number);
- by change number (0.9): the deployment's commit message, its pipeline run's branch or pipeline name, or
  its release's name names a change number (`LinkingRules.change_number_pattern`) that a release has as
  its name.

A deployment without an explicit change falls to the time rule (0.6): the production deployment of the
change's service finished (started, when the finish is missing) inside the change's window
(`window_start`..`window_end`, both ends included); of several changes, the one whose window starts
last (then the highest id). Canceled changes and canceled deployments are left out of the time rule.
"""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from obeya.linking.derived import candidates, empty_candidates, fetch, rows_to_scan
from obeya.linking.rules import CHANGE_NUMBER, LinkingRules
from obeya.store.base import Store

EXPLICIT_CONFIDENCE = 1.0
CHANGE_NUMBER_CONFIDENCE = 0.9
TIME_RULE_CONFIDENCE = 0.6

_TEXTS = pa.schema(
    [
        ("id", pa.string()),
        ("what", pa.string()),
        ("text", pa.string()),
        ("release_id", pa.string()),
    ]
)


def _within(table: str | None) -> str:
    """The condition keeping the deployments listed in SQL table `table` (all when None)."""
    return f" AND d.id IN (SELECT item_id FROM {table})" if table else ""


def _texts(store: Store, within: str | None) -> pa.Table:
    """Every text of a deployment that may name a change number: (deployment id, what it is, text, the
    deployment's release id)."""
    scope = _within(within)
    return fetch(
        store,
        "SELECT d.id, 'release name' AS what, rel.name AS text, d.release_id FROM deployments d "
        f"JOIN releases rel ON rel.id = d.release_id WHERE TRUE{scope} "
        "UNION ALL "
        "SELECT d.id, 'commit message', c.message, d.release_id FROM deployments d "
        f"JOIN commits c ON c.repo = d.repo AND c.sha = d.commit_sha WHERE TRUE{scope} "
        "UNION ALL "
        "SELECT d.id, 'pipeline run branch', r.branch, d.release_id FROM deployments d "
        f"JOIN pipeline_runs r ON r.id = d.pipeline_run_id WHERE r.branch IS NOT NULL{scope} "
        "UNION ALL "
        "SELECT d.id, 'pipeline name', r.pipeline, d.release_id FROM deployments d "
        f"JOIN pipeline_runs r ON r.id = d.pipeline_run_id WHERE TRUE{scope}",
        (),
        _TEXTS,
    )


def _releases_by_name(store: Store, pattern: re.Pattern[str]) -> dict[str, list[tuple[str, str]]]:
    """(id, name) of the releases whose name is a change number, by that number."""
    rows = store.query("SELECT id, name FROM releases ORDER BY id")
    by_name: dict[str, list[tuple[str, str]]] = {}
    for release_id, name in rows:
        match = pattern.fullmatch(str(name))
        if match is not None and match.group(1) is not None:
            by_name.setdefault(match.group(1), []).append((str(release_id), str(name)))
    return by_name


def named_changes(store: Store, rules: LinkingRules, within: str | None = None) -> pa.Table:
    """deployment → release candidates for the change numbers a deployment's texts name (0.9), and for
    the deployment's own release when that is a change request (1.0)."""
    pattern = rules.compiled_change_number
    by_name = _releases_by_name(store, pattern)
    if not by_name:
        return empty_candidates()
    texts = _texts(store, within)
    ids, whats = texts["id"].to_pylist(), texts["what"].to_pylist()
    values, own = texts["text"].to_pylist(), texts["release_id"].to_pylist()
    from_ids: list[str] = []
    to_ids: list[str] = []
    evidence: list[str] = []
    confidence: list[float] = []
    for row in rows_to_scan(texts["text"], rules.change_number_pattern, (CHANGE_NUMBER,)):
        for match in pattern.finditer(values[row]):
            number = match.group(1)
            for release_id, name in by_name.get(number or "", ()):
                from_ids.append(ids[row])
                to_ids.append(release_id)
                if whats[row] == "release name" and release_id == own[row]:
                    evidence.append(f"deployment release_id is {name}")
                    confidence.append(EXPLICIT_CONFIDENCE)
                else:
                    evidence.append(f"{whats[row]} mentions {number}")
                    confidence.append(CHANGE_NUMBER_CONFIDENCE)
    if not from_ids:
        return empty_candidates()
    return candidates(from_ids, to_ids, evidence, np.array(confidence))


_CORRELATED = pa.schema([("from_id", pa.string()), ("to_id", pa.string()), ("evidence", pa.string())])


def correlated_changes(store: Store, within: str | None = None) -> pa.Table:
    """deployment → release candidates whose correlation id names the deployment, its run or its commit
    (1.0): one equality join each, so every side can use a hash join."""
    scope = _within(within)
    said = "d.id AS from_id, rel.id AS to_id, 'correlation id of ' || rel.name || ' is '"
    rows = fetch(
        store,
        f"SELECT {said} || 'this deployment' FROM deployments d "
        f"JOIN releases rel ON rel.correlation_id = d.external_id WHERE TRUE{scope} "
        "UNION "
        f"SELECT {said} || 'this deployment' FROM deployments d "
        f"JOIN releases rel ON rel.correlation_id = d.id WHERE TRUE{scope} "
        "UNION "
        f"SELECT {said} || 'pipeline run ' || r.external_id FROM deployments d "
        "JOIN pipeline_runs r ON r.id = d.pipeline_run_id "
        f"JOIN releases rel ON rel.correlation_id = r.external_id WHERE TRUE{scope} "
        "UNION "
        f"SELECT {said} || 'pipeline run ' || r.external_id FROM deployments d "
        "JOIN pipeline_runs r ON r.id = d.pipeline_run_id "
        f"JOIN releases rel ON rel.correlation_id = r.id WHERE TRUE{scope} "
        "UNION "
        f"SELECT {said} || 'commit ' || substr(d.commit_sha, 1, 7) FROM deployments d "
        f"JOIN releases rel ON rel.correlation_id = d.commit_sha WHERE TRUE{scope}",
        (),
        _CORRELATED,
    )
    return candidates(rows["from_id"], rows["to_id"], rows["evidence"], EXPLICIT_CONFIDENCE)


def _minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def windowed_changes(store: Store, rules: LinkingRules, within: str | None = None) -> pa.Table:
    """deployment → release candidates by the time rule (0.6), for every production deployment (not
    canceled) of a service with a change (not canceled) whose window holds the deployment's finish."""
    rows = fetch(
        store,
        "SELECT deployment_id, release_id, name, service, finished, window_start, window_end FROM ("
        "  SELECT d.id AS deployment_id, rel.id AS release_id, rel.name, d.service,"
        "    COALESCE(d.finished_at, d.started_at) AS finished, rel.window_start, rel.window_end,"
        "    row_number() OVER (PARTITION BY d.id ORDER BY rel.window_start DESC, rel.id DESC) AS rn"
        "  FROM deployments d JOIN releases rel ON rel.service = d.service"
        "  WHERE d.environment_class = ? AND d.result <> 'canceled' AND rel.status <> 'canceled'"
        "    AND COALESCE(d.finished_at, d.started_at) >= rel.window_start"
        f"    AND COALESCE(d.finished_at, d.started_at) <= rel.window_end{_within(within)}"
        ") ranked WHERE rn = 1",
        (rules.production_class,),
        pa.schema(
            [
                ("from_id", pa.string()),
                ("to_id", pa.string()),
                ("name", pa.string()),
                ("service", pa.string()),
                ("finished", pa.timestamp("us")),
                ("window_start", pa.timestamp("us")),
                ("window_end", pa.timestamp("us")),
            ]
        ),
    )
    if rows.num_rows == 0:
        return empty_candidates()
    evidence = [
        f"time rule: {rules.production_class} deployment of {service} finished {_minute(finished)}, "
        f"inside the window of {name} ({_minute(start)}..{_minute(end)})"
        for name, service, finished, start, end in zip(
            *(rows[c].to_pylist() for c in ("name", "service", "finished", "window_start", "window_end")),
            strict=True,
        )
    ]
    return candidates(rows["from_id"], rows["to_id"], evidence, TIME_RULE_CONFIDENCE)


def change_requests(store: Store, rules: LinkingRules, within: str | None = None) -> pa.Table:
    """deployment → release (`covered_by`) candidates: explicit ones (correlation id, release, change
    number) and, for the deployments without any, the time rule. With `within` (an SQL table of
    deployment ids), only the links from those deployments."""
    explicit = pa.concat_tables([correlated_changes(store, within), named_changes(store, rules, within)])
    by_time = windowed_changes(store, rules, within)
    if explicit.num_rows and by_time.num_rows:
        stated = explicit["from_id"].combine_chunks()
        by_time = by_time.filter(pc.invert(pc.is_in(by_time["from_id"], value_set=stated)))
    return pa.concat_tables([explicit, by_time])
