"""Local git sync against repositories built in tmp_path with the `git` command, on DuckDB and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from obeya.config.loader import ConfigError, parse_config
from obeya.connectors.errors import ConnectorError
from obeya.connectors.git.collector import GitCollector, GitCursor
from obeya.connectors.git.config import GitConnectionConfig, GitRepositoryConfig
from obeya.connectors.sync import load_cursor, replay, sync
from obeya.model.records import Commit, CommitParent, Identity, Person, Release
from obeya.store import Store

NOW = datetime(2024, 5, 1, tzinfo=UTC)
REPO = "acme/monorepo"
NORMALIZED_KINDS = ("person", "identity", "commit", "commit_parent", "release")


class Builder:
    """Builds a repository with the `git` command; each commit one second after the previous one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tick = 0
        path.mkdir()
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, who: tuple[str, str] = ("Ada Lovelace", "ada@example.com")) -> str:
        self.tick += 1
        when = f"2024-03-01T10:00:{self.tick:02d}+02:00"
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": who[0],
            "GIT_AUTHOR_EMAIL": who[1],
            "GIT_AUTHOR_DATE": when,
            "GIT_COMMITTER_NAME": "Grace Hopper",
            "GIT_COMMITTER_EMAIL": "grace@example.com",
            "GIT_COMMITTER_DATE": when,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        done = subprocess.run(["git", *args], cwd=self.path, env=env, capture_output=True, check=True)
        return done.stdout.decode().strip()

    def commit(self, message: str, files: dict[str, str], **options: Any) -> str:
        for name, text in files.items():
            (self.path / name).parent.mkdir(parents=True, exist_ok=True)
            (self.path / name).write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message, **options)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def monorepo(tmp_path: Path) -> tuple[Builder, dict[str, str]]:
    """main: root, pay; feature: ledger1, ledger2 (merged with --no-ff into main); a squashed branch."""
    repo = Builder(tmp_path / "monorepo")
    shas: dict[str, str] = {}
    shas["root"] = repo.commit(
        "Initial layout\n\nTwo services.",
        {"services/payments/app.py": "a\n", "services/ledger/db.py": "b\n", "README.md": "r\n"},
    )
    repo.git("checkout", "-q", "-b", "feature")
    shas["ledger1"] = repo.commit("Ledger: add books", {"services/ledger/books.py": "1\n2\n"})
    shas["ledger2"] = repo.commit(
        "Ledger: fix db", {"services/ledger/db.py": "b2\n"}, who=("Linus", "Linus@Example.com")
    )
    repo.git("checkout", "-q", "main")
    shas["pay"] = repo.commit("Payments: api", {"services/payments/api.py": "x\ny\nz\n"})
    repo.git("merge", "-q", "--no-ff", "feature", "-m", "Merge branch 'feature'")
    shas["merge"] = repo.git("rev-parse", "HEAD")
    repo.git("checkout", "-q", "-b", "topic")
    repo.commit("topic 1", {"services/payments/fee.py": "1\n"})
    repo.commit("topic 2", {"services/payments/fee.py": "2\n", "services/payments/app.py": "a2\n"})
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--squash", "topic")
    shas["squash"] = repo.commit("Payments: fees (#7)", {})
    repo.git("tag", "-a", "v1.2.0", "-m", "Release 1.2.0", shas["merge"])
    repo.git("tag", "light", shas["pay"])
    repo.git("branch", "-D", "topic")  # squashed: its own commits are no longer on any branch
    return repo, shas


def _connection(path: Path, **options: Any) -> GitConnectionConfig:
    return GitConnectionConfig(
        name="git", repositories=[GitRepositoryConfig(path=str(path), name=REPO, **options)]
    )


def _commit(store: Store, sha: str) -> Commit:
    found = store.fetch_records("commit", "id = ?", [f"git:{REPO}@{sha}"])
    assert len(found) == 1 and isinstance(found[0], Commit)
    return found[0]


def _parents(store: Store, sha: str) -> list[str]:
    rows = store.fetch_records("commit_parent", "commit_sha = ?", [sha])
    edges = sorted((r for r in rows if isinstance(r, CommitParent)), key=lambda r: r.position)
    return [e.parent_sha for e in edges]


def person_raw(store: Store, person_id: str) -> str | None:
    return store.fetch_records("person", "id = ?", [person_id])[0].raw_event_id


def snapshot(store: Store) -> dict[str, dict[str, dict[str, Any]]]:
    return {kind: {r.id: r.model_dump() for r in store.fetch_records(kind)} for kind in NORMALIZED_KINDS}


def test_commits_parents_paths_authors_and_tags(
    store: Store, monorepo: tuple[Builder, dict[str, str]]
) -> None:
    repo, shas = monorepo
    report = sync(store, _connection(repo.path), clock=lambda: NOW)
    # root, ledger1, ledger2, pay, merge, squash: the deleted topic branch's commits are not read
    assert report.resources[f"{REPO}/commits"].fetched == 6
    assert report.resources[f"{REPO}/tags"].fetched == 2
    assert store.query("SELECT count(*) FROM commits")[0][0] == 6

    root = _commit(store, shas["root"])
    assert (root.repo, root.sha, root.message) == (REPO, shas["root"], "Initial layout\n\nTwo services.")
    assert root.authored_at == datetime(2024, 3, 1, 8, 0, 3)  # 10:00:03+02:00 (the 3rd git call) in UTC
    assert root.committed_at == datetime(2024, 3, 1, 8, 0, 3)
    assert sorted(root.paths or []) == ["README.md", "services/ledger/db.py", "services/payments/app.py"]
    assert (root.additions, root.deletions) == (3, 0)
    assert _parents(store, shas["root"]) == []
    assert root.raw_event_id == f"git:commit:{REPO}@{shas['root']}"
    assert person_raw(store, "git:email/linus@example.com") == "git:author:linus@example.com"

    fix = _commit(store, shas["ledger2"])
    assert fix.paths == ["services/ledger/db.py"]
    assert (fix.additions, fix.deletions) == (1, 1)
    assert fix.author_id == "git:email/linus@example.com"
    person = store.fetch_records("person", "id = ?", [fix.author_id])[0]
    assert isinstance(person, Person)
    assert (person.display_name, person.email) == ("Linus", "linus@example.com")
    identity = store.fetch_records("identity", "id = ?", ["git:email/linus@example.com"])[0]
    assert isinstance(identity, Identity)
    assert (identity.person_id, identity.tool, identity.username) == (person.id, "git", "Linus")

    merge = _commit(store, shas["merge"])
    assert _parents(store, shas["merge"]) == [shas["pay"], shas["ledger2"]]  # first parent: main
    # a merge's paths are what it brought to its first parent: the ledger service only
    assert sorted(merge.paths or []) == ["services/ledger/books.py", "services/ledger/db.py"]
    assert merge.author_id == "git:email/ada@example.com"

    squash = _commit(store, shas["squash"])
    assert _parents(store, shas["squash"]) == [shas["merge"]]
    assert sorted(squash.paths or []) == ["services/payments/app.py", "services/payments/fee.py"]
    assert squash.message == "Payments: fees (#7)"

    releases = {r.name: r for r in store.fetch_records("release") if isinstance(r, Release)}
    assert set(releases) == {"v1.2.0", "light"}
    tagged = releases["v1.2.0"]
    assert (tagged.external_id, tagged.version, tagged.status) == (f"{REPO}/tags/v1.2.0", "1.2.0", "released")
    assert tagged.description == "Release 1.2.0"
    assert tagged.released_at is not None and tagged.released_at > squash.authored_at  # the tagger's time
    light = releases["light"]
    assert (light.version, light.released_at, light.description) == (
        "light",
        _commit(store, shas["pay"]).committed_at,
        None,
    )

    cursor = load_cursor(store, "git", f"{REPO}/commits")
    assert cursor is not None and cursor.status == "complete"
    assert GitCursor.parse(cursor.cursor).heads == tuple(sorted({shas["squash"], shas["ledger2"]}))


def test_second_sync_reads_only_the_new_commits(
    store: Store, monorepo: tuple[Builder, dict[str, str]]
) -> None:
    repo, shas = monorepo
    sync(store, _connection(repo.path), clock=lambda: NOW)
    assert sync(store, _connection(repo.path), clock=lambda: NOW).resources[f"{REPO}/commits"].fetched == 0

    new = [repo.commit("Payments: retry", {"services/payments/retry.py": "r\n"})]
    repo.git("checkout", "-q", "-b", "hotfix", shas["ledger2"])
    new.append(repo.commit("Ledger: hotfix", {"services/ledger/hot.py": "h\n"}))
    new.append(repo.commit("Ledger: hotfix 2", {"services/ledger/hot.py": "h2\n"}))
    report = sync(store, _connection(repo.path), clock=lambda: NOW)
    assert report.resources[f"{REPO}/commits"].fetched == 3
    assert report.resources[f"{REPO}/commits"].raw_events == 3 + 1  # and their one author
    assert store.query("SELECT count(*) FROM commits")[0][0] == 9
    assert _parents(store, new[1]) == [shas["ledger2"]]
    assert _parents(store, new[2]) == [new[1]]

    # only the configured branch: its new commits
    other = _connection(repo.path, branches=["main"])
    assert sync(store, other, full=True, clock=lambda: NOW).resources[f"{REPO}/commits"].fetched == 7


def test_an_interrupted_walk_resumes_with_nothing_twice(monorepo: tuple[Builder, dict[str, str]]) -> None:
    repo, _ = monorepo
    collector = GitCollector(_connection(repo.path), clock=lambda: NOW, page_size=2)
    pages = list(collector.collect_resource(f"{REPO}/commits", None, full=False))
    assert [p.fetched for p in pages] == [2, 2, 2, 0]
    assert [p.complete for p in pages] == [False, False, False, True]
    resumed = collector.collect_resource(f"{REPO}/commits", pages[0].cursor.dumps(), False)
    first = [e.external_id for e in pages[0].events if e.event_type == "commit"]
    rest = [e.external_id for p in resumed for e in p.events if e.event_type == "commit"]
    everything = [e.external_id for p in pages for e in p.events if e.event_type == "commit"]
    assert sorted(first + rest) == sorted(everything) and len(set(rest)) == 4


def test_a_path_that_is_not_a_repository_is_named(store: Store, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ConnectorError, match=f"{plain} is not a git repository .*'{REPO}'"):
        sync(store, _connection(plain), clock=lambda: NOW)
    cursor = load_cursor(store, "git", f"{REPO}/commits")
    assert cursor is not None and cursor.status == "failed" and str(plain) in (cursor.message or "")
    with pytest.raises(ConnectorError, match=f"{tmp_path / 'missing'} does not exist"):
        sync(store, _connection(tmp_path / "missing"), clock=lambda: NOW)


def test_a_missing_branch_is_named(store: Store, monorepo: tuple[Builder, dict[str, str]]) -> None:
    repo, _ = monorepo
    with pytest.raises(ConnectorError, match="branch 'nope' does not exist"):
        sync(store, _connection(repo.path, branches=["nope"]), clock=lambda: NOW)


def test_bare_clone(store: Store, monorepo: tuple[Builder, dict[str, str]], tmp_path: Path) -> None:
    repo, _ = monorepo
    subprocess.run(
        ["git", "clone", "-q", "--mirror", str(repo.path), str(tmp_path / "mirror.git")], check=True
    )
    report = sync(store, _connection(tmp_path / "mirror.git"), clock=lambda: NOW)
    assert report.resources[f"{REPO}/commits"].fetched == 6  # the same history, read from a bare clone


def test_replay_rebuilds_what_sync_wrote(store: Store, monorepo: tuple[Builder, dict[str, str]]) -> None:
    repo, _ = monorepo
    sync(store, _connection(repo.path), clock=lambda: NOW)
    synced = snapshot(store)
    assert all(synced.values())
    for kind in ("people", "identities", "commits", "commit_parents", "releases"):
        store.execute(f"DELETE FROM {kind}")
    report = replay(store, "git")
    assert set(report.resources) == {"author", "commit", "tag"}
    assert snapshot(store) == synced


def test_git_connection_in_obeya_yaml(tmp_path: Path) -> None:
    text = (
        "connections:\n"
        "  - name: local\n"
        "    tool: git\n"
        "    repositories:\n"
        "      - {path: /src/payments, name: acme/payments}\n"
        "      - {path: /src/ledger, name: acme/ledger, branches: [main, release]}\n"
    )
    config = parse_config(text, tmp_path / "obeya.yaml")
    connection = config.connections[0]
    assert isinstance(connection, GitConnectionConfig)
    assert [r.branches for r in connection.repositories] == [None, ["main", "release"]]
    with pytest.raises(ConfigError, match=r"obeya\.yaml:5"):
        parse_config(text.replace("name: acme/payments", "nme: acme/payments"), tmp_path / "obeya.yaml")
