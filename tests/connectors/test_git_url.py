"""Git repositories given by a clone URL: a real repository served over dumb HTTP on loopback (with basic
authentication) and a file:// URL, mirrored under the connection's cache dir, on DuckDB and PostgreSQL."""

from __future__ import annotations

import base64
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_git_sync import NOW, REPO, Builder

from obeya.config.loader import ConfigError, parse_config
from obeya.connectors.check import Status, check_connection
from obeya.connectors.errors import ConnectorError
from obeya.connectors.git.config import GitConnectionConfig, GitRepositoryConfig
from obeya.connectors.git.mirror import Mirror, default_cache_dir
from obeya.connectors.sync import load_cursor, sync
from obeya.store import Store

TOKEN = "s3cr3t-git-token"
VARIABLE = "OBEYA_TEST_GIT_TOKEN"


class _Handler(SimpleHTTPRequestHandler):
    """Serves the folder of bare repositories to git's dumb HTTP client, behind basic authentication."""

    expected = "Basic " + base64.b64encode(f"git:{TOKEN}".encode()).decode()
    seen: list[str | None]

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class DumbHttpGit:
    """A bare repository published over dumb HTTP (``git update-server-info``) on 127.0.0.1."""

    def __init__(self, work: Builder, root: Path) -> None:
        self.work = work
        self.bare = root / "acme.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(work.path), str(self.bare)], check=True)
        self.publish()
        handler = type("Handler", (_Handler,), {"seen": []})
        self.handler = handler
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/acme.git"

    def publish(self) -> None:
        """Push the working repository's branches and tags, then refresh the dumb-HTTP index."""
        subprocess.run(
            ["git", "-C", str(self.work.path), "push", "-q", "--mirror", str(self.bare)],
            check=True,
            capture_output=True,
        )
        subprocess.run(["git", "-C", str(self.bare), "update-server-info"], check=True)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def work(tmp_path: Path) -> Builder:
    """main: two commits; feature: one more; a tag."""
    repo = Builder(tmp_path / "work")
    repo.commit("Initial layout", {"services/payments/app.py": "a\n"})
    repo.commit("Payments: api", {"services/payments/api.py": "x\n"})
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("Ledger: books", {"services/ledger/books.py": "1\n"})
    repo.git("checkout", "-q", "main")
    repo.git("tag", "-a", "v1.0.0", "-m", "Release 1.0.0")
    return repo


@pytest.fixture
def served(work: Builder, tmp_path: Path) -> Iterator[DumbHttpGit]:
    root = tmp_path / "served"
    root.mkdir()
    server = DumbHttpGit(work, root)
    yield server
    server.stop()


def _connection(url: str, cache: Path, **options: Any) -> GitConnectionConfig:
    return GitConnectionConfig(
        name="remote-git",
        repositories=[GitRepositoryConfig(url=url, name=REPO, **options)],
        cache_dir=str(cache),
        fetch_timeout=30,
    )


def _commits(store: Store) -> int:
    return int(store.query("SELECT count(*) FROM commits")[0][0])


def test_http_url_is_mirrored_then_fetched_incrementally(
    store: Store, work: Builder, served: DumbHttpGit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VARIABLE, TOKEN)
    connection = _connection(served.url, tmp_path / "cache", token_env=VARIABLE)
    report = sync(store, connection, clock=lambda: NOW)
    assert report.resources[f"{REPO}/commits"].fetched == 3
    assert _commits(store) == 3
    assert [r.name for r in store.fetch_records("release")] == ["v1.0.0"]
    mirror = Mirror(connection.repositories[0], connection)
    assert mirror.path.parent == tmp_path / "cache" and (mirror.path / "HEAD").exists()
    on_disk = "".join(p.read_text(errors="replace") for p in mirror.path.rglob("*") if p.is_file())
    assert TOKEN not in on_disk and base64.b64encode(f"git:{TOKEN}".encode()).decode() not in on_disk
    assert served.handler.seen and set(served.handler.seen) <= {None, _Handler.expected}

    new = work.commit("Payments: retry", {"services/payments/retry.py": "r\n"})
    served.publish()
    report = sync(store, connection, clock=lambda: NOW)
    assert report.resources[f"{REPO}/commits"].fetched == 1  # only the commit the fetch brought
    assert _commits(store) == 4
    assert store.fetch_records("commit", "id = ?", [f"git:{REPO}@{new}"])


def test_a_rejected_token_or_unreachable_url_is_named_and_keeps_what_is_stored(
    store: Store, served: DumbHttpGit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VARIABLE, TOKEN)
    cache = tmp_path / "cache"
    sync(store, _connection(served.url, cache, token_env=VARIABLE), clock=lambda: NOW)
    assert _commits(store) == 3

    monkeypatch.setenv(VARIABLE, "wrong-token")
    with pytest.raises(ConnectorError, match=f"git fetch of {served.url} .*'{REPO}'.* failed") as refused:
        sync(store, _connection(served.url, cache, token_env=VARIABLE), clock=lambda: NOW)
    assert "wrong-token" not in str(refused.value)
    cursor = load_cursor(store, "remote-git", f"{REPO}/commits")
    assert cursor is not None and cursor.status == "failed" and served.url in (cursor.message or "")

    served.stop()  # nothing listens there any more
    with pytest.raises(ConnectorError, match=f"git fetch of {served.url} .* failed"):
        sync(store, _connection(served.url, cache, token_env=VARIABLE), clock=lambda: NOW)
    monkeypatch.delenv(VARIABLE)
    with pytest.raises(ConnectorError, match=f"\\${VARIABLE} is not set"):
        sync(store, _connection(served.url, cache, token_env=VARIABLE), clock=lambda: NOW)
    assert _commits(store) == 3  # what the first sync stored stays


def test_a_first_clone_that_fails_leaves_no_mirror(store: Store, tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'nothing-here.git'}"
    with pytest.raises(ConnectorError, match=f"git clone of {url} .* failed"):
        sync(store, _connection(url, tmp_path / "cache"), clock=lambda: NOW)
    assert list((tmp_path / "cache").iterdir()) == []


def test_file_url(store: Store, work: Builder, tmp_path: Path) -> None:
    connection = _connection(f"file://{work.path}", tmp_path / "cache")
    assert sync(store, connection, clock=lambda: NOW).resources[f"{REPO}/commits"].fetched == 3
    work.commit("Payments: fees", {"services/payments/fee.py": "f\n"})
    assert sync(store, connection, clock=lambda: NOW).resources[f"{REPO}/commits"].fetched == 1


def test_connections_test_asks_the_url_without_cloning(
    served: DumbHttpGit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VARIABLE, TOKEN)
    connection = _connection(served.url, tmp_path / "cache", token_env=VARIABLE)
    (result,) = check_connection(connection)
    assert (result.check, result.status, result.result) == (
        f"url {served.url}",
        Status.ok,
        f"answers with 2 branches ({REPO})",
    )
    assert not (tmp_path / "cache").exists()
    monkeypatch.setenv(VARIABLE, "wrong-token")
    (result,) = check_connection(connection)
    assert result.status == Status.fail and f"git ls-remote of {served.url}" in result.result
    assert f"${VARIABLE}" in result.action


def test_url_config_is_validated_with_its_key_and_line(tmp_path: Path) -> None:
    text = (
        "connections:\n"
        "  - name: remote\n"
        "    tool: git\n"
        "    cache_dir: /var/cache/obeya\n"
        "    repositories:\n"
        "      - {url: 'https://git.example.com/acme/payments.git', name: acme/payments,"
        " token_env: GIT_TOKEN}\n"
        "      - {url: 'git@git.example.com:acme/ledger.git', name: acme/ledger}\n"
    )
    connection = parse_config(text, tmp_path / "obeya.yaml").connections[0]
    assert isinstance(connection, GitConnectionConfig)
    assert [r.url for r in connection.repositories] == [
        "https://git.example.com/acme/payments.git",
        "git@git.example.com:acme/ledger.git",
    ]
    for wrong, message in [
        ("url: 'https://git.example.com/acme/payments.git', path: /srv/p", "both `path` and `url` are given"),
        ("name: acme/x, branches: [main]", "neither `path` nor `url` is given"),
        ("url: 'https://bob:hunter2@git.example.com/a.git'", "holds credentials"),
        ("url: 'ftp://git.example.com/a.git'", "is not a clone URL"),
        ("url: 'ssh://git@git.example.com/a.git', token_env: GIT_TOKEN", "`token_env` is for https/http"),
    ]:
        bad = text.replace("url: 'https://git.example.com/acme/payments.git'", wrong)
        with pytest.raises(ConfigError, match=r"obeya\.yaml:6: connections\[0\]\.repositories\[0\]") as error:
            parse_config(bad, tmp_path / "obeya.yaml")
        assert message in str(error.value)
        assert "hunter2" not in str(error.value)  # a password in a URL is never echoed


def test_the_default_cache_is_beside_the_duckdb_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBEYA_DATABASE_URL", f"duckdb:///{tmp_path}/data/obeya.duckdb")
    assert default_cache_dir() == tmp_path / "data" / "git-mirrors"
    monkeypatch.setenv("OBEYA_DATABASE_URL", "postgresql://postgres@127.0.0.1/test")
    assert default_cache_dir() == Path("~/.cache/obeya/git-mirrors").expanduser()


def test_a_cache_dir_that_cannot_be_made_is_named(store: Store, work: Builder, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConnectorError, match=f"cannot make the mirror of file://{work.path} .* in {blocker}"):
        sync(store, _connection(f"file://{work.path}", blocker), clock=lambda: NOW)


def test_a_url_that_never_answers_times_out_naming_it(store: Store, tmp_path: Path) -> None:
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections are taken by the kernel; nothing ever answers them
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/acme.git"
    connection = _connection(url, tmp_path / "cache").model_copy(update={"fetch_timeout": 1.0})
    try:
        with pytest.raises(ConnectorError, match=f"git clone of {url} .* timed out after 1 s"):
            sync(store, connection, clock=lambda: NOW)
    finally:
        silent.close()
    assert list((tmp_path / "cache").iterdir()) == []
