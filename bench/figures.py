"""Dump every engine figure the engine benchmark times, to compare them before and after a speed change.

Run: .venv/bin/python bench/figures.py STORE_URL OUT.json       (dump)
     .venv/bin/python bench/figures.py --compare BEFORE.json AFTER.json

For each value stream (and, in each, its first team and the ``defect`` flow item type) at two as-of
dates (the benchmark's 2025-06-30 and 2025-03-31, a past window whose items are not all settled), under
the default rules and under stricter ones (rollbacks counted, incidents from sev2): the DORA report, the
failed deployment events, the value stream map beside the previous window's, and the flow figures. A
comparison says which figures differ (floats: beyond 1e-9 relative), or that all are identical.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import sys
from typing import Any

from obeya.engine import dora, flow
from obeya.engine.dora_rules import DEFAULT_DORA_RULES, DeploymentRules, DoraRules, IncidentRules
from obeya.engine.snapshot import forget_snapshots
from obeya.engine.stage_comparison import value_stream_map_with_previous
from obeya.engine.window import Slice, Window
from obeya.model.vocabulary import FlowItemType
from obeya.store import Store, connect

AS_OF = (dt.date(2025, 6, 30), dt.date(2025, 3, 31))
STRICT = DoraRules(DeploymentRules(count_rollbacks=True), IncidentRules(min_severity="sev2"))


def _plain(value: Any) -> Any:
    """`value` as JSON-ready data (dataclasses as dicts, dates as text)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def figures(store: Store) -> dict[str, Any]:
    """Every figure of every stream, slice, as-of date and rule set, keyed by where it comes from."""
    out: dict[str, Any] = {}
    streams = [r[0] for r in store.query("SELECT id FROM value_streams ORDER BY id")]
    for as_of in AS_OF:
        window = Window.last("90d", as_of)
        for stream in streams:
            team = store.query(
                "SELECT team_id FROM work_items WHERE team_id IS NOT NULL AND project IN "
                "(SELECT object_key FROM scopes WHERE value_stream_id = ?) ORDER BY team_id LIMIT 1",
                [stream],
            )
            scopes = [
                Slice(value_stream_id=stream),
                Slice(value_stream_id=stream, flow_item_type=FlowItemType.DEFECT),
            ]
            if team:
                scopes.append(Slice(value_stream_id=stream, team_id=team[0][0]))
            for scope in scopes:
                forget_snapshots(store)
                key = f"{as_of} {stream} team={scope.team_id} type={scope.flow_item_type}"
                for name, rules in (("default", DEFAULT_DORA_RULES), ("strict", STRICT)):
                    events, params = dora.failed_deployment_events(window, scope, rules)
                    out[f"{key} {name} dora"] = _plain(dora.dora_report(store, window, scope, rules))
                    out[f"{key} {name} failed events"] = _plain(
                        store.query(f"SELECT * FROM ({events}) e ORDER BY id", params)
                    )
                    out[f"{key} {name} map"] = _plain(
                        value_stream_map_with_previous(store, window, scope, rules=rules)
                    )
                times = flow.flow_time(store, window, scope, by="week")
                out[f"{key} flow"] = _plain(
                    [
                        flow.flow_velocity(store, window, scope, by="week"),
                        times,
                        flow.flow_efficiency(store, window, scope, by="week"),
                        flow.flow_load(store, window, scope),
                        flow.flow_distribution(store, window, scope),
                        flow.flow_predictability(store, window, scope),
                        flow.work_item_age(store, window, scope, flow_times=times),
                    ]
                )
    return out


def _differences(before: Any, after: Any, where: str) -> list[str]:
    if isinstance(before, float) and isinstance(after, float):
        same = math.isclose(before, after, rel_tol=1e-9, abs_tol=1e-9)
        return [] if same else [f"{where}: {before!r} -> {after!r}"]
    if isinstance(before, dict) and isinstance(after, dict):
        if before.keys() != after.keys():
            return [f"{where}: keys {sorted(before.keys() ^ after.keys())}"]
        return [d for k in before for d in _differences(before[k], after[k], f"{where}.{k}")]
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [f"{where}: {len(before)} -> {len(after)} entries"]
        return [
            d
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for d in _differences(b, a, f"{where}[{i}]")
        ]
    return [] if before == after else [f"{where}: {before!r} -> {after!r}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs=2, help="STORE_URL OUT.json, or with --compare BEFORE.json AFTER.json")
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    if args.compare:
        with open(args.paths[0]) as b, open(args.paths[1]) as a:
            differences = _differences(json.load(b), json.load(a), "")
        print("\n".join(differences[:50]) or "identical", f"({len(differences)} differences)")
        sys.exit(1 if differences else 0)
    store = connect(args.paths[0])
    dumped = figures(store)
    with open(args.paths[1], "w") as out:
        json.dump(dumped, out, indent=1, sort_keys=True)
    print(f"{len(dumped)} figure sets written to {args.paths[1]}")


if __name__ == "__main__":
    main()
