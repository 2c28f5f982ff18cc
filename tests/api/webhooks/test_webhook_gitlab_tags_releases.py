"""GitLab Tag Push and Release Hooks are kept raw only, and the receiver says why.

The payloads are GitLab's documented examples ("Webhook events": Tag events, Release events; trimmed,
with the project of the other GitLab hook tests so it is in scope).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from obeya.model.records import RECORD_TYPES, RawEvent
from obeya.store import Store
from tests.api.webhooks.deliveries import CASES, SECRET, client_for, declare_scopes, post, settled

GITLAB = next(c for c in CASES if c.tool == "gitlab")
PROJECT = {
    "id": 7,
    "name": "shop",
    "path_with_namespace": "acme/shop",
    "web_url": "https://gitlab.example/acme/shop",
    "default_branch": "master",
}
TAG_PUSH = {
    "object_kind": "tag_push",
    "event_name": "tag_push",
    "before": "0000000000000000000000000000000000000000",
    "after": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
    "ref": "refs/tags/v1.0.0",
    "ref_protected": True,
    "checkout_sha": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
    "user_id": 1,
    "user_name": "John Smith",
    "user_avatar": "https://s.gravatar.com/avatar/d4c74594d841139328695756648b6bd6?s=8://s.gravatar.com/avatar/d4c74594d841139328695756648b6bd6?s=80",
    "project_id": 7,
    "project": PROJECT,
    "commits": [],
    "total_commits_count": 0,
    "repository": {"name": "shop", "url": "ssh://git@gitlab.example/acme/shop.git"},
}
RELEASE = {
    "id": 1,
    "created_at": "2020-11-02 12:55:12 UTC",
    "description": "v1.1 has been released",
    "name": "v1.1",
    "released_at": "2020-11-02 12:55:12 UTC",
    "tag": "v1.1",
    "object_kind": "release",
    "project": PROJECT,
    "url": "https://gitlab.example/acme/shop/-/releases/v1.1",
    "action": "create",
    "assets": {"count": 0, "links": [], "sources": []},
    "commit": {
        "id": "ee0a3fb31ac16e11b9dbb596ad16d4af654d08f8",
        "message": "Release v1.1",
        "title": "Release v1.1",
        "timestamp": "2020-10-31T14:58:32+11:00",
        "url": "https://gitlab.example/acme/shop/-/commit/ee0a3fb31ac16e11b9dbb596ad16d4af654d08f8",
        "author": {"name": "Example User", "email": "user@example.com"},
    },
}


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GITLAB.secret_env, SECRET)


@pytest.mark.parametrize(
    ("payload", "event", "what"),
    [(TAG_PUSH, "Tag Push Hook", "tags"), (RELEASE, "Release Hook", "releases")],
    ids=["tag_push", "release"],
)
def test_tag_push_and_release_hooks_are_kept_raw_only_with_why(
    store: Store, payload: dict[str, Any], event: str, what: str
) -> None:
    declare_scopes(store)
    before = {t.kind: store.count(t.kind) for t in RECORD_TYPES if t.kind != "raw_event"}
    client = client_for(store)
    response, delivery = post(client, GITLAB, payload, event)
    assert response.status_code == 202, response.text
    answer = settled(client, response)
    kind = payload["object_kind"]
    assert answer["outcome"] == "stored"
    assert answer["reason"] == (
        f"not normalized: GitLab {kind} events are kept raw only: the GitLab connector collects no {what}, "
        "so no record "
        "is made of them by a sync either"
    )
    (stored,) = store.fetch_records("raw_event", "source = 'gitlab' AND delivery_id = ?", [delivery])
    assert isinstance(stored, RawEvent) and json.loads(stored.payload) == payload
    assert {t.kind: store.count(t.kind) for t in RECORD_TYPES if t.kind != "raw_event"} == before
    status = client.get("/api/v1/webhooks/status").json()["sources"]["gitlab"]
    assert (status["received"], status["stored_raw_only"]) == (1, 1)
