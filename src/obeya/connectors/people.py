"""Where a tool's account or a git author becomes a `Person` and its `Identity`: one set of rules for the
code-hosting connectors (GitHub, GitLab, Azure DevOps, local git), which differ only by source, the tool
of an account's identity, how an account's fields are named and which accounts are bots.

Ids, under the connector's source: ``user/ID`` (an account), ``git/EMAIL`` (a git author known only by
e-mail, lower-cased).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from obeya.model.ids import record_id
from obeya.model.records import Identity, Person, Record

Item = dict[str, Any]


def bot_name(name: Any) -> bool:
    """A name that GitHub and GitLab give bots and apps: ending in ``[bot]``."""
    return str(name or "").endswith("[bot]")


def person_records(
    source: str,
    external_id: str,
    raw_event_id: str,
    *,
    tool: str,
    display_name: str,
    username: str | None,
    email: str | None,
    is_bot: bool = False,
    identity: bool = True,
) -> list[Record]:
    """The `Person` ``source:external_id`` and, unless `identity` is off, its `Identity` in `tool`."""
    person = Person(
        source=source,
        external_id=external_id,
        raw_event_id=raw_event_id,
        display_name=display_name,
        email=email,
        is_bot=is_bot,
    )
    if not identity:
        return [person]
    return [
        person,
        Identity(
            source=source,
            external_id=external_id,
            raw_event_id=raw_event_id,
            person_id=person.id,
            tool=tool,
            username=username,
            email=email,
        ),
    ]


def _never(user: Item) -> bool:
    return False


@dataclass(frozen=True)
class People:
    """The people of one connector: its `source`, the `tool` of its accounts' identities, its bot rule."""

    source: str
    tool: str
    is_bot: Callable[[Item], bool] = _never

    def person_id(self, user: Any) -> str | None:
        """The id of the `Person` of an account object (None when there is no account or it has no id)."""
        if isinstance(user, dict) and user.get("id") not in (None, ""):
            return record_id(self.source, f"user/{user['id']}")
        return None

    def git_person_id(self, email: str) -> str:
        """The id of the `Person` of a git author known only by e-mail."""
        return record_id(self.source, f"git/{email.lower()}")

    def account(
        self, raw_event_id: str, user: Item, *, display_name: str, username: str | None, email: str | None
    ) -> list[Record]:
        """The `Person` and `Identity` ``user/ID`` of an account, a bot by `is_bot`."""
        return person_records(
            self.source,
            f"user/{user['id']}",
            raw_event_id,
            tool=self.tool,
            display_name=display_name,
            username=username,
            email=email,
            is_bot=self.is_bot(user),
        )

    def git_author(
        self,
        raw_event_id: str,
        email: str,
        *,
        display_name: str,
        username: str | None,
        is_bot: bool = False,
        identity: bool = True,
    ) -> list[Record]:
        """The `Person` ``git/EMAIL`` (lower-cased) of a commit author and its `Identity` in ``git``."""
        email = email.lower()
        return person_records(
            self.source,
            f"git/{email}",
            raw_event_id,
            tool="git",
            display_name=display_name,
            username=username,
            email=email,
            is_bot=is_bot,
            identity=identity,
        )
