"""Local git repositories as a `Connector`: per repository its commits, then its tags.

The repositories sync one after another: reading one is `git` and Python parsing its output on the
machine's CPUs and disk, with no network answer to wait for, so a second one at the same time only
shares the same cores; and an author seen in several repositories is one raw event whose name is the
last one read, which a fixed order keeps the same from run to run.
"""

from __future__ import annotations

from obeya.connectors.base import ToolConnector
from obeya.connectors.git.collector import SOURCE, GitCollector, GitCursor
from obeya.connectors.git.config import GitConnectionConfig
from obeya.connectors.git.normalizer import normalize
from obeya.connectors.http import HttpClient


def _unused_client(config: GitConnectionConfig) -> HttpClient:
    """An HTTP client that is never used: git is read with the `git` command, not over HTTP (the generic
    sync asks every connector for one)."""
    return HttpClient("http://localhost", tool="git")


class GitConnector(ToolConnector[GitConnectionConfig]):
    """Commits (with parents and paths), authors and tags of repositories on disk."""

    def __init__(self) -> None:
        super().__init__(
            tool="git",
            label="git",
            source=SOURCE,
            config_type=GitConnectionConfig,
            resource_names=GitCollector.resource_names,
            make_client=_unused_client,
            make_collector=lambda client, config, clock: GitCollector(config, clock=clock),
            parse_cursor=GitCursor.parse,
            normalizer=normalize,
            replay_groups=(("author",), ("commit",), ("tag",)),
        )
