"""Densify a demo store's production deployments to the issue's scale (~1 000 000), in SQL on the engine.

The demo organisation deploys about as often as a real one of its size (~20 000 production deployments at
1 000 000 work items); issue 4's scale asks the DORA queries to face ~1 000 000. `densify_deployments`
adds ``k - 1`` copies of every production deployment row (``k`` = the target over the rows there are,
rounded up), copy ``c`` finished (and started) ``c`` x `spacing` later, where the spacing spreads the
copies over the usual gap between a service's deployments (the year's span x the services / the target).
A copy keeps its original's service, environment, repository, commit, pipeline run and result (so the
demo's mix of success, failure, rolled back and rollback deployments is kept, and rows of one
multi-repository deployment stay one event); its id and external id are the original's with ``~c``.

What a copy ships: by default nothing — it redeploys a commit its original already deployed, which is
what `obeya link` derives for it, so ``deployment_changes`` keeps the demo's size (about one row per
change and environment, as a real organisation with that many changes would have) and every change's
first deployment, hence lead time, is unchanged. With ``copy_changes`` each copy also ships its
original's changes (``deployment_changes`` rows written with source ``bench``, imported facts `obeya
link` leaves alone): ``k`` times the rows, every change shipped ``k`` times — a heavier, less realistic
shape. The copies cause no incident.

One transaction on either engine: ``INSERT ... SELECT`` statements, then the data version is bumped
(figures cached at the old version are never served); on PostgreSQL the two tables are analyzed after the
commit. The status-transition derived tables (flow_*) do not read deployments, so they stay right. Then
`update_links` (what `obeya link` runs) derives the links of the new data, so the store is what `obeya
link` makes of it: on the 10 000-item demo densified to ~100 000 it added no ``deployment_changes`` row
(a copy ships nothing), a ``deployed_by`` link from each copy to its pipeline run, and moved a few
``caused_by`` links (the time rule now finds a copy closer before an incident).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from obeya.linking import update_links
from obeya.store import Store
from obeya.store.postgres_store import PostgresStore

COPY_SOURCE = "bench"


@dataclass(frozen=True)
class Densified:
    """What `densify_deployments` did."""

    production_before: int
    copies_per_row: int
    spacing_seconds: int
    production_after: int
    deployment_changes_added: int
    links: str


def densify_deployments(store: Store, target: int, copy_changes: bool = False) -> Densified:
    """Add copies of every production deployment (and its shipped changes) until about `target`
    production deployment rows are stored; see the module docstring for how the copies are made."""
    before, services, span = store.query(
        "SELECT count(*), count(DISTINCT service), "
        "CAST(EXTRACT(EPOCH FROM max(COALESCE(finished_at, started_at)) - "
        "min(COALESCE(finished_at, started_at))) AS BIGINT) "
        "FROM deployments WHERE environment_class = 'production' AND id NOT LIKE '%~%'"
    )[0]
    if not before:
        raise SystemExit("densify: the store holds no production deployment to copy")
    copies = max(1, math.ceil(target / int(before)))
    spacing = max(1, int(span or 0) * int(services) // max(1, target))
    with store.transaction():
        store.execute(
            """INSERT INTO deployments (id, source, external_id, raw_event_id, service, environment,
    environment_class, repo, commit_sha, pipeline_run_id, release_id, result, is_rollback, started_at,
    finished_at, url)
SELECT d.id || '~' || CAST(g.c AS TEXT), d.source, d.external_id || '~' || CAST(g.c AS TEXT), NULL,
       d.service, d.environment, d.environment_class, d.repo, d.commit_sha, d.pipeline_run_id,
       d.release_id, d.result, d.is_rollback,
       d.started_at + g.c * INTERVAL '1 second' * ?, d.finished_at + g.c * INTERVAL '1 second' * ?, d.url
FROM deployments d CROSS JOIN generate_series(1, ?) AS g(c)
WHERE d.environment_class = 'production' AND d.id NOT LIKE '%~%'""",
            (spacing, spacing, copies - 1),
        )
        if copy_changes:
            store.execute(
                """INSERT INTO deployment_changes
    (id, source, external_id, raw_event_id, deployment_id, change_id)
SELECT dc.id || '~' || CAST(g.c AS TEXT), ?, dc.external_id || '~' || CAST(g.c AS TEXT), NULL,
       dc.deployment_id || '~' || CAST(g.c AS TEXT), dc.change_id
FROM deployment_changes dc JOIN deployments d ON d.id = dc.deployment_id
CROSS JOIN generate_series(1, ?) AS g(c)
WHERE d.environment_class = 'production' AND d.id NOT LIKE '%~%'""",
                (COPY_SOURCE, copies - 1),
            )
        store.execute("UPDATE data_versions SET version = version + 1")
    if isinstance(store, PostgresStore):
        store.execute('ANALYZE "deployments"')
        store.execute('ANALYZE "deployment_changes"')
    after = int(store.query("SELECT count(*) FROM deployments WHERE environment_class = 'production'")[0][0])
    added = int(store.query("SELECT count(*) FROM deployment_changes WHERE source = ?", (COPY_SOURCE,))[0][0])
    linked = update_links(store)
    return Densified(int(before), copies, spacing, after, added, linked.summary())
