"""A deployment received by webhook has its shipped changes linked by the worker, without `obeya link`."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime
from typing import Any

import pytest

from obeya.api.webhooks.worker import NormalizationWorker
from obeya.linking import update_links
from obeya.model.records import Change, Commit, CommitParent, Deployment
from obeya.store import Store
from tests.api.webhooks.deliveries import CASES, SECRET, client_for, declare_scopes

GITLAB = next(c for c in CASES if c.tool == "gitlab")
PROJECT = {
    "id": 7,
    "name": "shop",
    "path_with_namespace": "acme/shop",
    "web_url": "https://gitlab.example/acme/shop",
}
SHA = "279484c09fbe69ededfced8c1bb6e6d24616b468"
BASE = "a" * 40
DEPLOYED = "gitlab:acme/shop/deployments/15"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GITLAB.secret_env, SECRET)


def _hook(status: str, changed_at: str) -> dict[str, Any]:
    """GitLab's documented Deployment Hook example, on project acme/shop."""
    return {
        "object_kind": "deployment",
        "status": status,
        "status_changed_at": changed_at,
        "deployment_id": 15,
        "deployable_id": 796,
        "deployable_url": "https://gitlab.example/acme/shop/-/jobs/796",
        "environment": "production",
        "environment_tier": "production",
        "environment_slug": "production",
        "project": PROJECT,
        "short_sha": SHA[:8],
        "user": {"id": 1, "name": "Administrator", "username": "root", "email": "admin@example.com"},
        "commit_url": f"https://gitlab.example/acme/shop/-/commit/{SHA}",
        "commit_title": "Add new file",
    }


def _history(store: Store) -> None:
    """BASE ← SHA (the merge of !3), and a previous production deployment of BASE: the base of the next."""
    store.upsert_records(
        [
            Commit(
                source="gitlab",
                external_id=BASE,
                repo="acme/shop",
                sha=BASE,
                message="base",
                authored_at=datetime(2021, 4, 1),
            ),
            Commit(
                source="gitlab",
                external_id=SHA,
                repo="acme/shop",
                sha=SHA,
                message="Add new file",
                authored_at=datetime(2021, 4, 28),
            ),
            CommitParent(
                source="gitlab",
                external_id=f"{SHA}/0",
                repo="acme/shop",
                commit_sha=SHA,
                parent_sha=BASE,
                position=0,
            ),
            Change(
                source="gitlab",
                external_id="acme/shop!3",
                repo="acme/shop",
                number=3,
                title="Add new file",
                state="merged",
                created_at=datetime(2021, 4, 27),
                merged_at=datetime(2021, 4, 28, 12),
                merge_commit_sha=SHA,
            ),
            Deployment(
                source="gitlab",
                external_id="acme/shop/deployments/14",
                service="acme/shop",
                environment="production",
                environment_class="production",
                repo="acme/shop",
                commit_sha=BASE,
                result="success",
                started_at=datetime(2021, 4, 2),
                finished_at=datetime(2021, 4, 2, 0, 10),
            ),
        ]
    )


def test_a_deployment_delivered_by_webhook_has_its_shipped_changes_linked(store: Store) -> None:
    declare_scopes(store)
    _history(store)
    assert update_links(store).mode == "full"  # links derived before: the webhook's are incremental
    client = client_for(store)
    for status, at in (("running", "2021-04-28 21:45:00 +0200"), ("success", "2021-04-28 21:50:00 +0200")):
        headers = {
            "X-Gitlab-Token": SECRET,
            "X-Gitlab-Event": "Deployment Hook",
            "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        }
        response = client.post(GITLAB.path, content=json.dumps(_hook(status, at)).encode(), headers=headers)
        assert response.status_code == 202, response.text
    receiver = client.app.state.webhook_receiver  # type: ignore[attr-defined]
    assert receiver.wait_idle(timeout=30)  # settled, and the links derived after it

    assert store.query("SELECT deployment_id, change_id FROM deployment_changes") == [
        (DEPLOYED, "gitlab:acme/shop!3")
    ]
    assert store.query("SELECT evidence FROM trace_links WHERE link_kind = 'ships'") == [
        (f"git graph: merge commit {SHA[:7]} in {BASE[:7]}..{SHA[:7]}",)
    ]
    assert update_links(store).mode == "unchanged"  # nothing left for `obeya link` to do


def test_the_worker_derives_once_for_batches_that_follow_each_other() -> None:
    started, release = threading.Event(), threading.Event()
    settled: list[list[int]] = []
    after: list[int] = []

    def settle(batch: list[int]) -> None:
        started.set()
        assert release.wait(30)
        settled.append(batch)

    worker: NormalizationWorker[int] = NormalizationWorker(
        settle, batch_seconds=0, after=lambda: after.append(len(settled)), after_seconds=3600
    )
    worker.submit([1])
    assert started.wait(30)  # the first batch is being settled: the next deliveries queue behind it
    worker.submit(list(range(2, 11)))
    release.set()
    assert worker.wait_idle(timeout=30)
    assert settled == [[1], list(range(2, 11))]
    assert after == [2]  # not after the first batch (more were waiting): once, after the last
    worker.submit([11])
    assert worker.wait_idle(timeout=30)
    assert after == [2, 3]  # a lone delivery: right after its batch
    assert worker.close(timeout=30)
