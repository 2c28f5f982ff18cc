"""Where a local git repository's raw events become records: pure functions, no git, no I/O.

Record ids, all under source ``git``: ``NAME@SHA`` (Commit), ``NAME@SHA^N`` (CommitParent, N the parent's
position), ``NAME/tags/TAG`` (Release), ``email/EMAIL`` (Person and Identity of an author, by e-mail,
from the ``author`` raw events).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from obeya.connectors.base import Normalized
from obeya.connectors.git.collector import SOURCE
from obeya.connectors.people import person_records
from obeya.model.ids import record_id
from obeya.model.records import Commit, CommitParent, RawEvent, Record, Release
from obeya.normalize.rules import MappingRules

Item = dict[str, Any]
_VERSION = re.compile(r"^[vV](?=\d)")


def person_key(email: str) -> str:
    """The external id of the `Person` and `Identity` of a git author."""
    return f"email/{email.strip().lower()}"


def author_records(event: RawEvent, item: Item) -> list[Record]:
    """The `Person` and `Identity` (tool ``git``) of one ``author`` raw event."""
    email, name = item["email"], item.get("name", "")
    return person_records(
        SOURCE,
        person_key(email),
        event.id,
        tool=SOURCE,
        display_name=name or email,
        username=name or None,
        email=email,
    )


def _total(files: list[Item], key: str) -> int | None:
    counts = [f[key] for f in files if f.get(key) is not None]
    return sum(counts) if counts or not files else None


def commit_records(event: RawEvent, item: Item) -> list[Record]:
    """The `Commit`, its `CommitParent` edges and its author of one ``commit`` raw event."""
    repo, sha = item["repo"], item["sha"]
    records: list[Record] = []
    email = item.get("author_email", "").strip()
    author_id = record_id(SOURCE, person_key(email)) if email else None
    files = item.get("files", [])
    records.append(
        Commit(
            source=SOURCE,
            external_id=f"{repo}@{sha}",
            raw_event_id=event.id,
            repo=repo,
            sha=sha,
            message=item.get("message", ""),
            author_id=author_id,
            authored_at=datetime.fromisoformat(item["authored_at"]),
            committed_at=datetime.fromisoformat(item["committed_at"]) if item.get("committed_at") else None,
            additions=_total(files, "additions"),
            deletions=_total(files, "deletions"),
            paths=[f["path"] for f in files],
        )
    )
    for position, parent in enumerate(item.get("parents", [])):
        records.append(
            CommitParent(
                source=SOURCE,
                external_id=f"{repo}@{sha}^{position}",
                raw_event_id=event.id,
                repo=repo,
                commit_sha=sha,
                parent_sha=parent,
                position=position,
            )
        )
    return records


def tag_records(event: RawEvent, item: Item) -> list[Record]:
    """The `Release` of one ``tag`` raw event: released when the tag was made."""
    name = item["name"]
    return [
        Release(
            source=SOURCE,
            external_id=f"{item['repo']}/tags/{name}",
            raw_event_id=event.id,
            name=name,
            version=_VERSION.sub("", name),
            status="released",
            released_at=datetime.fromisoformat(item["created_at"]) if item.get("created_at") else None,
            description=item.get("subject") or None,
        )
    ]


def normalize(
    events: Sequence[RawEvent], rules: MappingRules, context: Sequence[RawEvent] = ()
) -> Normalized:
    """The records of git raw events (``commit`` and ``tag``); others are skipped with the reason."""
    result = Normalized()
    for event in events:
        try:
            item = json.loads(event.payload)
            if event.event_type == "commit":
                records = commit_records(event, item)
            elif event.event_type == "author":
                records = author_records(event, item)
            elif event.event_type == "tag":
                records = tag_records(event, item)
            else:
                result.skipped.append(
                    (event.id, f"git raw event type {event.event_type!r} is not normalized")
                )
                continue
        except (KeyError, ValueError, ValidationError) as error:
            result.skipped.append((event.id, f"malformed git {event.event_type}: {error}"[:300]))
            continue
        result.records += records
        result.normalized_events += 1
    return result
