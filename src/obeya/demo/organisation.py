"""The demo organisation: its workflow, its three value streams and the people who work in them.

Everything here is data. The numbers of a `StreamProfile` are the *causes* of each stream's story
(capacity, effort, cadence, failure odds); the waits and the bottleneck come out of the simulation in
`obeya.demo.simulation`, they are not written down anywhere.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from obeya.demo.batches import SOURCE
from obeya.demo.dependencies import StreamDependency
from obeya.model.records import Identity, Person, Record, Scope, Stage, Team, ValueStream
from obeya.model.schema import TABLES
from obeya.model.vocabulary import FlowState, StageCategory

WORKFLOW: dict[str, tuple[FlowState, str | None]] = {
    "Backlog": (FlowState.NEW, "ideation"),
    "Ready for Dev": (FlowState.WAITING, "integration"),
    "In Progress": (FlowState.ACTIVE, "integration"),
    "Blocked": (FlowState.WAITING, "integration"),
    "Waiting for Review": (FlowState.WAITING, "verification"),
    "In Review": (FlowState.ACTIVE, "verification"),
    "Ready for Test": (FlowState.WAITING, "verification"),
    "Testing": (FlowState.ACTIVE, "verification"),
    "Ready for Release": (FlowState.WAITING, "delivery"),
    "Released": (FlowState.WAITING, "observation"),  # nobody works it: it waits for feedback
    "Done": (FlowState.DONE, "observation"),
    "Canceled": (FlowState.CANCELED, None),
}
"""Every status of the demo's Jira-like workflow, with the flow state and stage it maps to."""

STAGES: tuple[str, ...] = tuple(c.value for c in StageCategory)

BOTS: tuple[tuple[str, str], ...] = (
    ("dependabot", "dependabot[bot]"),
    ("renovate", "renovate[bot]"),
    ("sonarcloud", "sonarcloud[bot]"),
)


@dataclass(frozen=True)
class RepoProfile:
    """A repository of a stream, the service built from it, and how its pull requests are merged."""

    name: str
    service: str
    merge_method: str  # squash, merge or rebase
    weight: float  # share of the stream's changes landing here


@dataclass(frozen=True)
class StreamProfile:
    """One value stream's shape: size, capacity, effort, cadence and failure odds (at items=5200)."""

    key: str
    name: str
    stream_type: str
    project: str
    description: str
    share: float  # of all work items
    repos: tuple[RepoProfile, ...]
    teams: tuple[str, ...]
    developers_per_team: int
    testers_per_team: int
    review_slots: int
    type_mix: tuple[tuple[str, float], ...]  # flow item type -> share
    dev_days: float  # median developer effort of a feature, in working days
    review_days: float
    test_days: float
    test_failure: float  # chance a test sends the item back to development
    changes_requested: float  # chance a review round asks for changes
    interruptions_per_developer_day: float  # unplanned ops work pulling developers off items
    interruption_days: float
    wip_per_developer: float
    cadence: str  # "scheduled" (at deploy_at), "release-train" or "continuous"
    deploy_failure: float  # share of production deployments that fail (and are retried)
    rollback: float  # share rolled back (and retried)
    incident: float  # share that succeed and then cause an incident
    incident_detection_hours: tuple[float, float]  # incident opened this long after the deployment
    acknowledge_minutes: tuple[float, float]  # on-call acknowledges this long after it opened
    rollback_minutes: tuple[float, float]  # a rolled-back deployment is undone this long after it finished
    recovery_hours: float  # median time to resolve a change-caused incident
    monitoring_days: float  # time in Released before Done
    dependency_bot: str
    # when the "scheduled" cadence deploys: working days into the week (0.0 = Monday 09:00, 1 = 9 hours)
    deploy_at: tuple[float, ...] = field(default=())
    epic_themes: tuple[str, ...] = field(default=())
    story_themes: tuple[str, ...] = field(default=())


STREAMS: tuple[StreamProfile, ...] = (
    StreamProfile(
        key="payments",
        name="Payments",
        stream_type="core",
        project="PAY",
        description="Card payments, refunds and the ledger; manual regulatory testing before release.",
        share=0.40,
        repos=(
            RepoProfile("payments/payments-api", "payments-api", "squash", 0.65),
            RepoProfile("payments/ledger", "ledger", "merge", 0.35),
        ),
        teams=("Payments Checkout", "Payments Ledger"),
        developers_per_team=5,
        testers_per_team=1,
        review_slots=3,
        type_mix=(("feature", 0.55), ("defect", 0.25), ("risk", 0.08), ("debt", 0.12)),
        dev_days=0.7,
        review_days=0.12,
        test_days=0.36,
        test_failure=0.14,
        changes_requested=0.22,
        interruptions_per_developer_day=0.03,
        interruption_days=0.4,
        wip_per_developer=2.5,
        cadence="scheduled",
        deploy_failure=0.04,
        rollback=0.035,
        incident=0.05,
        incident_detection_hours=(0.3, 18.0),
        acknowledge_minutes=(3.0, 45.0),
        rollback_minutes=(60.0, 240.0),
        recovery_hours=3.0,
        monitoring_days=1.5,
        dependency_bot="dependabot",
        deploy_at=(0.15, 0.7, 1.15, 1.7, 2.15, 2.7, 3.15, 3.7),  # 10:21 and 15:18, Monday to Thursday
        epic_themes=(
            "Refunds",
            "3-D Secure",
            "SEPA instant",
            "Ledger reconciliation",
            "Payouts",
            "Chargebacks",
        ),
        story_themes=(
            "refund webhook retries",
            "idempotency keys",
            "settlement report",
            "card token vault",
            "payout schedule",
            "ledger balance check",
            "currency rounding",
            "fraud score hook",
        ),
    ),
    StreamProfile(
        key="mobile",
        name="Mobile App",
        stream_type="core",
        project="MOB",
        description="The iOS/Android app and its backend-for-frontend. Ships on a two-week release train.",
        share=0.35,
        repos=(
            RepoProfile("mobile/app", "mobile-app", "merge", 0.6),
            RepoProfile("mobile/bff", "mobile-bff", "squash", 0.4),
        ),
        teams=("Mobile Experience", "Mobile Growth"),
        developers_per_team=5,
        testers_per_team=2,
        review_slots=3,
        type_mix=(("feature", 0.62), ("defect", 0.24), ("risk", 0.04), ("debt", 0.10)),
        dev_days=0.8,
        review_days=0.12,
        test_days=0.2,
        test_failure=0.12,
        changes_requested=0.25,
        interruptions_per_developer_day=0.03,
        interruption_days=0.4,
        wip_per_developer=3.5,
        cadence="release-train",
        deploy_failure=0.11,
        rollback=0.02,
        incident=0.22,
        incident_detection_hours=(0.3, 18.0),
        acknowledge_minutes=(3.0, 45.0),
        rollback_minutes=(60.0, 360.0),
        recovery_hours=60.0,
        monitoring_days=3.0,
        dependency_bot="renovate",
        epic_themes=(
            "Onboarding v2",
            "Dark mode",
            "Offline basket",
            "Push campaigns",
            "Accessibility",
            "Wallet",
        ),
        story_themes=(
            "login screen",
            "push opt-in",
            "basket sync",
            "deep links",
            "image cache",
            "crash on resume",
            "tablet layout",
            "feature flag client",
        ),
    ),
    StreamProfile(
        key="platform",
        name="Platform",
        stream_type="supporting",
        project="PLAT",
        description="API gateway and authentication for every product team. Small team, lots of ops work.",
        share=0.25,
        repos=(
            RepoProfile("platform/gateway", "gateway", "rebase", 0.55),
            RepoProfile("platform/auth", "auth", "squash", 0.45),
        ),
        teams=("Platform",),
        developers_per_team=6,
        testers_per_team=0,
        review_slots=3,
        type_mix=(("feature", 0.40), ("defect", 0.22), ("risk", 0.14), ("debt", 0.24)),
        dev_days=0.4,
        review_days=0.06,
        test_days=0.02,
        test_failure=0.04,
        changes_requested=0.15,
        interruptions_per_developer_day=0.8,
        interruption_days=0.5,
        wip_per_developer=4.0,
        cadence="continuous",
        deploy_failure=0.01,
        rollback=0.008,
        incident=0.007,
        incident_detection_hours=(0.05, 0.3),
        acknowledge_minutes=(1.0, 8.0),
        rollback_minutes=(2.0, 10.0),
        recovery_hours=0.3,
        monitoring_days=0.7,
        dependency_bot="dependabot",
        epic_themes=("mTLS everywhere", "Rate limiting", "OIDC federation", "Gateway v3", "Key rotation"),
        story_themes=(
            "rate limit headers",
            "token introspection",
            "JWKS cache",
            "route config reload",
            "TLS cert rotation",
            "audit log shipping",
            "health probe",
            "session revocation",
        ),
    ),
)


DEPENDENCIES: tuple[StreamDependency, ...] = (
    StreamDependency("payments", "platform", 0.11),  # gateway routes, auth scopes for new APIs
    StreamDependency("mobile", "platform", 0.14),  # login, tokens, rate limits for the app
    StreamDependency("mobile", "payments", 0.09),  # wallet and checkout screens need Payments' APIs
    StreamDependency("platform", "payments", 0.015),  # a migration waits for a product team's change
    StreamDependency("platform", "mobile", 0.01),
)
"""Which streams' items depend on which, and how often (docs/demo.md): the product streams lean on the
platform, the app on Payments too; the supporting stream rarely waits on a product team."""


@dataclass(frozen=True)
class Member:
    """A person of the demo organisation, with the role the simulation gives them."""

    id: str
    name: str
    login: str
    email: str
    team_id: str | None
    role: str  # developer, tester, manager or bot


@dataclass
class Organisation:
    """The organisation's rows and the people each stream's simulation draws on."""

    records: list[Record]
    developers: dict[str, list[Member]]  # by stream key
    testers: dict[str, list[Member]]
    team_ids: dict[str, list[str]]
    stream_ids: dict[str, str]
    bots: dict[str, Member]


_FIRST = (
    "Ana",
    "Ben",
    "Chloé",
    "Dev",
    "Elif",
    "Femi",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Kai",
    "Lena",
    "Maya",
    "Nils",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Uma",
    "Victor",
    "Wen",
    "Yara",
)
_LAST = (
    "Almeida",
    "Brandt",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Weber",
)


def _person(
    rng: random.Random, external_id: str, team_id: str | None, role: str, out: list[Record]
) -> Member:
    name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    login = external_id.removeprefix("person/")
    email = f"{login}@example.com"
    person = Person(source=SOURCE, external_id=external_id, display_name=name, email=email, team_id=team_id)
    out.append(person)
    for tool, username in (("jira", f"acc-{login}"), ("github", login), ("git", None)):
        out.append(
            Identity(
                source=SOURCE,
                external_id=f"identity/{tool}/{login}",
                person_id=person.id,
                tool=tool,
                username=username,
                email=email if tool != "jira" else None,
            )
        )
    return Member(person.id, name, login, email, team_id, role)


def scaled(count: float, scale: float) -> int:
    """A head count at this scale: at least one."""
    return max(1, round(count * scale))


def build_organisation(seed: int, scale: float) -> Organisation:
    """The value streams, stages, scopes, teams, people (scaled with `scale`), identities and bots."""
    rng = random.Random(f"obeya-demo-org-{seed}")
    out: list[Record] = []
    developers: dict[str, list[Member]] = {}
    testers: dict[str, list[Member]] = {}
    team_ids: dict[str, list[str]] = {}
    stream_ids: dict[str, str] = {}
    for profile in STREAMS:
        stream = ValueStream(
            source=SOURCE,
            external_id=f"value-stream/{profile.key}",
            name=profile.name,
            stream_type=profile.stream_type,
            description=profile.description,
            owner=f"{profile.name} value stream manager",
        )
        out.append(stream)
        stream_ids[profile.key] = stream.id
        for position, name in enumerate(STAGES):
            out.append(
                Stage(
                    source=SOURCE,
                    external_id=f"stage/{profile.key}/{name}",
                    value_stream_id=stream.id,
                    name=name,
                    position=position,
                    category=name,
                )
            )
        scopes = [("jira", "project", profile.project)]
        scopes += [("github", "repository", r.name) for r in profile.repos]
        scopes += [("deployments", "service", r.service) for r in profile.repos]
        for tool, object_type, key in scopes:
            out.append(
                Scope(
                    source=SOURCE,
                    external_id=f"scope/{profile.key}/{object_type}/{key}",
                    value_stream_id=stream.id,
                    tool=tool,
                    object_type=object_type,
                    object_key=key,
                )
            )
        developers[profile.key] = []
        testers[profile.key] = []
        team_ids[profile.key] = []
        for t, team_name in enumerate(profile.teams):
            team = Team(
                source=SOURCE,
                external_id=f"team/{profile.key}-{t + 1}",
                name=team_name,
                value_stream_id=stream.id,
            )
            out.append(team)
            team_ids[profile.key].append(team.id)
            for d in range(scaled(profile.developers_per_team, scale)):
                login = f"{profile.key}-{t + 1}-dev-{d + 1}"
                developers[profile.key].append(_person(rng, f"person/{login}", team.id, "developer", out))
            for q in range(scaled(profile.testers_per_team, scale) if profile.testers_per_team else 0):
                login = f"{profile.key}-{t + 1}-qa-{q + 1}"
                testers[profile.key].append(_person(rng, f"person/{login}", team.id, "tester", out))
    bots: dict[str, Member] = {}
    for key, login in BOTS:
        person = Person(
            source=SOURCE, external_id=f"person/bot-{key}", display_name=login, is_bot=True, email=None
        )
        out.append(person)
        out.append(
            Identity(
                source=SOURCE,
                external_id=f"identity/github/{login}",
                person_id=person.id,
                tool="github",
                username=login,
            )
        )
        bots[key] = Member(person.id, login, login, "", None, "bot")
    return Organisation(out, developers, testers, team_ids, stream_ids, bots)


def organisation_batches(organisation: Organisation) -> Iterator[tuple[str, pa.Table]]:
    """The organisation's rows as one Arrow batch per kind, in dependency order."""
    for kind, spec in TABLES.items():
        records = [r for r in organisation.records if r.kind == kind]
        if records:
            yield kind, spec.to_arrow(records)
