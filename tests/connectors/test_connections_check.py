"""`obeya connections test` against the local test servers: what each check says, the table, the exit code."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from github_server import ANTS, OPENBIC, TOKEN, FakeGitHub, recorded_github
from jira_server import FakeJira
from typer.testing import CliRunner

from obeya.cli.connections import connections_app
from obeya.connectors.check import CheckResult, Status, check_connection, failed
from obeya.connectors.config import GitHubConnectionConfig, JiraConnectionConfig
from obeya.connectors.git.config import GitConnectionConfig, GitRepositoryConfig


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """The recorded GitHub API, with ``/user`` answering as github.com does for a classic token."""
    server = recorded_github().start()
    server.fail(
        "/user",
        status=200,
        body='{"login": "octocat"}',
        headers={"X-OAuth-Scopes": "repo, read:org"},
        times=99,
    )
    yield server
    server.stop()


def _connection(server: FakeGitHub, **options: object) -> GitHubConnectionConfig:
    settings: dict[str, object] = {"name": "gh", "base_url": server.base_url, "repositories": [ANTS, OPENBIC]}
    settings.update(options)
    return GitHubConnectionConfig.model_validate(settings)


def _by_check(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.check: r for r in results}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_good_github_connection_passes(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    results = check_connection(_connection(github))
    found = _by_check(results)
    assert not failed(results), results
    assert found["credentials"].result == "$GITHUB_TOKEN is set"
    assert found["token"].result == "accepted (user octocat)"
    assert "repo, read:org" in found["scopes"].result.replace("read:org, repo", "repo, read:org")
    assert found[f"repository {ANTS}"].status is Status.ok
    assert found[f"repository {OPENBIC}"].status is Status.ok
    assert all(r.path == "/user" or r.path.endswith("/pulls") for r in github.requests)
    assert all(r.query.get("per_page") == "1" for r in github.requests if r.path.endswith("/pulls"))


def test_bad_token_is_rejected(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    github.faults.clear()  # /user answers 401 like everything else
    monkeypatch.setenv("GITHUB_TOKEN", "not-the-token")
    results = check_connection(_connection(github))
    found = _by_check(results)
    assert failed(results)
    assert found["reachable"].status is Status.ok
    assert found["token"].status is Status.fail
    assert "rejected (401)" in found["token"].result and "$GITHUB_TOKEN" in found["token"].result
    assert not any(r.check.startswith("repository") for r in results)  # nothing more to learn


def test_unset_variable_is_named(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OBEYA_TEST_UNSET_TOKEN", raising=False)
    results = check_connection(_connection(github, token_env="OBEYA_TEST_UNSET_TOKEN"))
    assert [(r.check, r.status) for r in results] == [("credentials", Status.fail)]
    assert results[0].result == "$OBEYA_TEST_UNSET_TOKEN is not set"
    assert "export OBEYA_TEST_UNSET_TOKEN=" in results[0].action
    assert github.requests == []


def test_unreachable_base_url_says_so_with_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    url = f"http://127.0.0.1:{_closed_port()}"
    connection = GitHubConnectionConfig(name="gh", base_url=url, repositories=[ANTS])
    results = check_connection(connection, timeout=2.0)
    found = _by_check(results)
    assert found["reachable"].status is Status.fail
    assert f"cannot reach {url}" in found["reachable"].result
    assert "refused" in found["reachable"].result
    assert "token" not in found


def test_unresolvable_host_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    connection = GitHubConnectionConfig(name="gh", base_url="http://obeya-no-such-host.invalid")
    found = _by_check(check_connection(connection, timeout=2.0))
    assert found["reachable"].status is Status.fail
    assert "cannot reach http://obeya-no-such-host.invalid" in found["reachable"].result


def test_repository_answered_404_cannot_be_read(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    results = check_connection(_connection(github, repositories=[ANTS, "acme/secret"]))
    found = _by_check(results)
    assert found[f"repository {ANTS}"].status is Status.ok
    secret = found["repository acme/secret"]
    assert secret.status is Status.fail
    assert secret.result == "cannot read acme/secret: check the token's access"
    assert "repo scope" in secret.action


def test_repository_answered_403_cannot_be_read(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    github.fail(f"/repos/{OPENBIC}/pulls", status=403, body='{"message": "Resource not accessible"}')
    found = _by_check(check_connection(_connection(github)))
    assert found[f"repository {OPENBIC}"].result == f"cannot read {OPENBIC}: check the token's access"


def test_classic_token_without_repo_scope_fails(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    github.faults.clear()
    github.fail("/user", status=200, body='{"login": "octocat"}', headers={"X-OAuth-Scopes": "read:org"})
    found = _by_check(check_connection(_connection(github)))
    assert found["scopes"].status is Status.fail
    assert "without repo or public_repo (scopes: read:org)" in found["scopes"].result


def test_fine_grained_token_without_scope_header(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    github.faults.clear()
    github.fail("/user", status=200, body='{"login": "octocat"}')
    results = check_connection(_connection(github))
    assert not failed(results)
    assert "fine-grained" in _by_check(results)["scopes"].result


def test_jira_bad_credentials_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeJira().start()
    try:
        monkeypatch.setenv("JIRA_EMAIL", "someone@example.com")
        monkeypatch.setenv("JIRA_TOKEN", "wrong")
        connection = JiraConnectionConfig(name="jira", base_url=server.base_url, projects=["OPS"])
        found = _by_check(check_connection(connection))
    finally:
        server.stop()
    assert found["reachable"].status is Status.ok
    assert found["token"].status is Status.fail and "rejected (401)" in found["token"].result


def test_jira_unset_email_and_token_are_both_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JIRA_EMAIL", raising=False)
    monkeypatch.delenv("JIRA_TOKEN", raising=False)
    connection = JiraConnectionConfig(name="jira", base_url="https://x.atlassian.net", projects=["OPS"])
    results = check_connection(connection)
    assert [r.result for r in results] == ["$JIRA_EMAIL is not set", "$JIRA_TOKEN is not set"]


def test_git_paths_must_be_repositories(tmp_path: Path) -> None:
    connection = GitConnectionConfig(
        name="local",
        repositories=[
            GitRepositoryConfig(path=str(Path(__file__).resolve().parents[2]), name="obeya"),
            GitRepositoryConfig(path=str(tmp_path), name="empty"),
        ],
    )
    results = check_connection(connection)
    assert [r.status for r in results] == [Status.ok, Status.fail]
    assert "is not a git repository" in results[1].result


# --- the command ---------------------------------------------------------------------------------------

app = typer.Typer()
app.add_typer(connections_app, name="connections")  # as `obeya` registers it


def _config(tmp_path: Path, github: FakeGitHub, repositories: list[str]) -> Path:
    path = tmp_path / "obeya.yaml"
    listed = "".join(f"\n      - {r}" for r in repositories)
    path.write_text(
        f"connections:\n  - name: gh\n    base_url: {github.base_url}\n    repositories:{listed}\n"
        f"  - name: other\n    base_url: {github.base_url}\n    token_env: OBEYA_TEST_UNSET_TOKEN\n"
    )
    return path


def test_command_prints_the_table_and_exits_1_on_a_failure(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("OBEYA_TEST_UNSET_TOKEN", raising=False)
    monkeypatch.setenv("OBEYA_CONFIG", str(_config(tmp_path, github, [ANTS, "acme/secret"])))
    result = CliRunner().invoke(app, ["connections", "test"])
    assert result.exit_code == 1, result.output
    for text in (
        "connection",
        "what to do",
        "accepted (user octocat)",
        "cannot read acme/secret: check the token's access",
        "$OBEYA_TEST_UNSET_TOKEN is not set",
    ):
        assert text in result.output


def test_command_exits_0_when_every_check_passes(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("OBEYA_CONFIG", str(_config(tmp_path, github, [ANTS])))
    result = CliRunner().invoke(app, ["connections", "test", "gh", "--format", "json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["ok"] is True
    assert {c["connection"] for c in body["checks"]} == {"gh"}
    assert {c["status"] for c in body["checks"]} == {"ok"}


def test_command_names_an_unknown_connection(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBEYA_CONFIG", str(_config(tmp_path, github, [ANTS])))
    result = CliRunner().invoke(app, ["connections", "test", "nope"])
    assert result.exit_code == 2
    assert "no connection named 'nope'" in result.output


def test_command_has_examples_in_its_help() -> None:
    result = CliRunner().invoke(app, ["connections", "test", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output
