"""Bare mirrors of repositories given by a clone URL: cloned on the first sync, fetched on each later one.

A repository with `url` is read from a bare mirror (``git clone --mirror``) under the connection's
`cache_dir` (default: `default_cache_dir`), one folder per repository name and URL. The first sync
clones it (into a temporary folder renamed when complete, so an interrupted clone leaves nothing half
made); each later sync runs ``git fetch --prune`` in it. Then it is read like a `path` repository.

Credentials: for an https/http URL, the token in the variable `token_env` names is sent as the basic
authentication password through git's environment (``GIT_CONFIG_COUNT``/``KEY``/``VALUE``:
``http.extraHeader``), never on the command line, in the mirror's config or in a message; ssh URLs use
the user's keys or agent, without prompting (``BatchMode``). Every git command has a timeout
(`GitConnectionConfig.fetch_timeout`); a failure or a timeout is a `GitError` naming the URL, and what a
previous sync stored is left as it is.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from obeya.connectors.errors import ConnectorError
from obeya.connectors.git.config import GitConnectionConfig, GitRepositoryConfig

MIRRORS = "git-mirrors"


class GitFetchError(ConnectorError):
    """A clone URL could not be cloned or fetched: unreachable, refused, timed out, no such repository."""


def default_cache_dir() -> Path:
    """``git-mirrors`` beside the DuckDB file of the configured store (``OBEYA_DATABASE_URL``, else
    `obeya.yaml`'s ``database_url``, else ``./obeya.duckdb``); for a PostgreSQL store
    ``~/.cache/obeya/git-mirrors``."""
    from obeya.settings import database_url  # settings reads the configuration, which names connectors

    try:
        url = database_url()
    except Exception:  # an unreadable obeya.yaml is reported by whoever loaded the connection
        url = os.environ.get("OBEYA_DATABASE_URL") or "duckdb:///./obeya.duckdb"
    if url.startswith("duckdb:///"):
        database = url.removeprefix("duckdb:///").split("?", 1)[0]
        if database and database != ":memory:":
            return Path(database).expanduser().resolve().parent / MIRRORS
    return Path("~/.cache/obeya").expanduser() / MIRRORS


def shown(url: str) -> str:
    """The URL as messages show it (no user information)."""
    parts = urlsplit(url)
    if parts.scheme and parts.hostname and (parts.username or parts.password):
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return url


class Mirror:
    """The bare mirror of one `url` repository of a connection."""

    def __init__(
        self, config: GitRepositoryConfig, connection: GitConnectionConfig, cache_dir: Path | None = None
    ) -> None:
        if config.url is None:
            raise ValueError(f"repository {config.name!r} has no url")
        self.config = config
        self.connection = connection
        self.url = config.url
        root = cache_dir or (
            Path(connection.cache_dir).expanduser() if connection.cache_dir else default_cache_dir()
        )
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:12]
        # One folder per name and URL: a URL changed in obeya.yaml is a new mirror, not a confused old one.
        self.path = root / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', config.name)}-{digest}.git"

    def _where(self) -> str:
        return f"{shown(self.url)} (repository {self.config.name!r} of connection {self.connection.name!r})"

    def _environment(self) -> tuple[dict[str, str], str | None]:
        env = dict(os.environ)
        env["GIT_TERMINAL_PROMPT"] = "0"
        env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        for variable in ("GIT_DIR", "GIT_WORK_TREE", "GIT_CONFIG_PARAMETERS"):
            env.pop(variable, None)
        token = None
        if self.config.token_env is not None:
            token = os.environ.get(self.config.token_env, "")
            if not token:
                raise GitFetchError(
                    f"${self.config.token_env} is not set: it holds the token to fetch {self._where()}"
                )
            pair = base64.b64encode(f"{self.config.username}:{token}".encode()).decode()
            count = int(env.get("GIT_CONFIG_COUNT") or 0)
            env["GIT_CONFIG_COUNT"] = str(count + 1)
            env[f"GIT_CONFIG_KEY_{count}"] = "http.extraHeader"
            env[f"GIT_CONFIG_VALUE_{count}"] = f"Authorization: Basic {pair}"
        return env, token

    def _run(self, args: list[str], what: str, timeout: float | None = None) -> str:
        env, token = self._environment()
        limit = timeout or self.connection.fetch_timeout
        try:
            # A session of its own: on a timeout the helpers git starts (git-remote-https, ssh) are
            # stopped with it, not left holding the connection and the half-made mirror.
            process = subprocess.Popen(
                ["git", *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except FileNotFoundError as error:
            raise GitFetchError("the `git` command is not installed (or not on PATH): install git") from error
        try:
            out, err = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise GitFetchError(
                f"git {what} of {self._where()} timed out after {limit:g} s: check the URL and the "
                "network, or raise `fetch_timeout`"
            ) from None
        message = err.decode(errors="replace").strip()
        if token:
            message = message.replace(token, "***")
        if process.returncode != 0:
            raise GitFetchError(f"git {what} of {self._where()} failed: {message or 'no message'}")
        return out.decode(errors="replace")

    def update(self) -> Path:
        """Clone the mirror if there is none yet, else fetch into it; the mirror's path."""
        if (self.path / "HEAD").exists():
            self._run(["-C", str(self.path), "fetch", "--prune", "--quiet", "origin"], "fetch")
            return self.path
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        except OSError as error:
            raise GitFetchError(
                f"cannot make the mirror of {self._where()} in {self.path.parent}: "
                f"{error.strerror or error}; set `cache_dir` to a folder Obeya may write"
            ) from None
        try:
            self._run(["clone", "--mirror", "--quiet", "--", self.url, str(partial)], "clone")
            try:
                partial.rename(self.path)
            except OSError:
                if not (self.path / "HEAD").exists():
                    raise
                # Another sync (`obeya serve`'s schedule, a CLI run) cloned it meanwhile: use theirs.
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return self.path

    def branches(self, timeout: float) -> int:
        """How many branches the URL answers with (``git ls-remote --heads``); nothing is written."""
        listed = self._run(["ls-remote", "--heads", "--", self.url], "ls-remote", timeout=timeout)
        return len([line for line in listed.splitlines() if line.strip()])
