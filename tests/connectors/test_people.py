"""One module makes the `Person` and `Identity` of every code-hosting connector's accounts and git authors;
what differs is the source, the identity's tool and the bot rule."""

from __future__ import annotations

from datetime import UTC, datetime

from obeya.connectors.azuredevops import normalizer as azuredevops
from obeya.connectors.git.normalizer import normalize as normalize_git
from obeya.connectors.github import normalizer as github
from obeya.connectors.gitlab import normalizer as gitlab
from obeya.connectors.people import People
from obeya.connectors.raw import raw_event
from obeya.model.records import Identity, Person
from obeya.normalize.rules import MappingRules


def test_an_account_is_a_person_and_an_identity_under_the_connectors_source() -> None:
    people = People("github", "github", github.is_bot)
    records = people.account(
        "raw-1", {"id": 7, "login": "dependabot[bot]"}, display_name="d", username="u", email=None
    )
    assert records == [
        Person(source="github", external_id="user/7", raw_event_id="raw-1", display_name="d", is_bot=True),
        Identity(
            source="github",
            external_id="user/7",
            raw_event_id="raw-1",
            person_id="github:user/7",
            tool="github",
            username="u",
        ),
    ]
    assert people.person_id({"id": 7}) == "github:user/7"
    assert people.person_id({"login": "ghost"}) is None
    assert people.person_id(None) is None
    assert people.git_person_id("Ana@Example.COM") == "github:git/ana@example.com"


def test_each_connector_keeps_its_bot_rule() -> None:
    assert github.is_bot({"type": "Bot", "login": "app"})
    assert github.is_bot({"type": "User", "login": "renovate[bot]"})
    assert not github.is_bot({"type": "User", "login": "ana"})
    assert gitlab.is_bot({"username": "project_42_bot_0a1b2c"})
    assert gitlab.is_bot({"username": "ana", "bot": True})
    assert not gitlab.is_bot({"username": "ana", "name": "Ana"})
    assert azuredevops.is_bot({"id": "g1", "displayName": "Shop Build Service"})
    assert azuredevops.is_bot({"id": "g2", "uniqueName": "Microsoft.VisualStudio.Services.TFS"})
    assert not azuredevops.is_bot({"id": "g3", "displayName": "Ana Lima"})


def test_an_azure_devops_commit_author_is_a_person_without_identity() -> None:
    records = azuredevops.PEOPLE.git_author(
        "raw-2", "Ana@Example.com", display_name="Ana", username=None, identity=False
    )
    assert records == [
        Person(
            source="azuredevops",
            external_id="git/ana@example.com",
            raw_event_id="raw-2",
            display_name="Ana",
            email="ana@example.com",
        )
    ]


def test_a_local_git_author_is_keyed_by_email_and_keeps_the_email_as_given() -> None:
    event = raw_event(
        "git",
        "author",
        "Ana@Example.com",
        {"email": "Ana@Example.com", "name": "Ana"},
        connection="local",
        received_at=datetime(2024, 5, 1, tzinfo=UTC),
    )
    records = normalize_git([event], MappingRules()).records
    assert [(r.kind, r.external_id, r.email) for r in records] == [
        ("person", "email/ana@example.com", "Ana@Example.com"),
        ("identity", "email/ana@example.com", "Ana@Example.com"),
    ]
    assert isinstance(records[1], Identity) and (records[1].tool, records[1].username) == ("git", "Ana")
