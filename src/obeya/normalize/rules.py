"""The mapping rules that turn each tool's words into the common model's vocabulary.

Explicit mappings (from `obeya.yaml`) win; otherwise the name heuristics below apply, and a status that
only a heuristic could place is reported as unmapped (docs/metrics.md: "Unknown statuses map by name
heuristics, and are reported as unmapped").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

from obeya.model.vocabulary import EnvironmentClass, FlowItemType, FlowState, StageCategory


@dataclass(frozen=True)
class StatusMapping:
    """Where a tool status puts a work item: its flow state and value stream stage."""

    flow_state: FlowState
    stage: str | None


@dataclass(frozen=True)
class UnmappedStatus:
    """A status no explicit rule named, placed by a heuristic (reported so a user can map it)."""

    status: str
    guessed: StatusMapping


@dataclass(frozen=True)
class EnvironmentRule:
    """Environments whose name matches `pattern` (a regular expression, case-insensitive) are `klass`."""

    pattern: str
    klass: EnvironmentClass

    def matches(self, environment: str) -> bool:
        """Whether the environment's name matches the rule."""
        return re.search(self.pattern, environment, re.IGNORECASE) is not None


@dataclass(frozen=True)
class DeploymentNameRule:
    """Pipeline jobs and stages whose name matches one of `patterns` (regular expressions, case-insensitive)
    are deployments, where the tool gives no deployment facts for them (`rules.deployments.job_patterns`).

    Their environment is the job's name; its class comes from the environment rules applied to that name,
    else `environment_class` (`rules.deployments.job_environment`).
    """

    patterns: tuple[str, ...] = ()
    environment_class: EnvironmentClass = EnvironmentClass.OTHER
    compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", tuple(re.compile(p, re.IGNORECASE) for p in self.patterns))

    def matched_pattern(self, *names: str) -> str | None:
        """The first pattern one of `names` matches, or None."""
        for pattern in self.compiled:
            if any(pattern.search(name) for name in names if name):
                return pattern.pattern
        return None


NAMED_DEPLOYMENT = "deployment-by-name"
"""The last part of the external id of a deployment recognised by a job name pattern (not by a fact)."""

DeploymentResult = Literal["success", "failure", "canceled", "running"]


def named_deployment_result(job_result: str) -> DeploymentResult | None:
    """The result of a deployment recognised by a job's name, from the job's result; None for a job that
    did not run (``skipped``): a name never makes a deployment of a job that did not run."""
    if job_result == "skipped":
        return None
    if job_result in ("success", "canceled", "running"):
        return cast(DeploymentResult, job_result)
    return "failure"


_GENERIC_JOB_WORDS = re.compile(r"\b(stages?|jobs?)\b|__default", re.IGNORECASE)

_I, _N, _V, _D, _O = (
    StageCategory.IDEATION.value,
    StageCategory.INTEGRATION.value,
    StageCategory.VERIFICATION.value,
    StageCategory.DELIVERY.value,
    StageCategory.OBSERVATION.value,
)

# Name heuristics, tried in order: the first pattern found in the normalized status name decides.
_STATUS_HEURISTICS: tuple[tuple[str, FlowState, str | None], ...] = (
    (r"cancel|won.?t ?(do|fix)|reject|declin|obsolete|duplicate|invalid|abandon", FlowState.CANCELED, None),
    (r"\bdone\b|closed|resolved|complete|finished|accepted|shipped", FlowState.DONE, _O),
    (r"monitor|in production|released|live|verify in prod", FlowState.WAITING, _O),  # not touch time
    (r"ready for (release|deploy|prod)|awaiting (release|deploy)|to deploy", FlowState.WAITING, _D),
    (r"deploy|releasing|rolling out", FlowState.ACTIVE, _D),
    (r"ready for (test|qa)|awaiting (test|qa)|to test|waiting for (test|qa)", FlowState.WAITING, _V),
    (r"ready for review|awaiting review|waiting for review|review requested", FlowState.WAITING, _V),
    (r"test|qa|review|verif|validat|approv|uat", FlowState.ACTIVE, _V),
    (r"block|on hold|wait|paused|impeded|parked", FlowState.WAITING, _N),
    (r"ready for dev|selected|to ?do|ready|committed|planned|open|reopen", FlowState.WAITING, _N),
    (r"in progress|in development|doing|develop|coding|implement|started|active|work", FlowState.ACTIVE, _N),
    (r"analys|refine|design|discovery|ideation", FlowState.ACTIVE, _I),
    (r"backlog|new|triage|funnel|idea|proposed|draft", FlowState.NEW, _I),
)

DEFAULT_ITEM_TYPES: Mapping[str, FlowItemType] = {
    "bug": FlowItemType.DEFECT,
    "defect": FlowItemType.DEFECT,
    "incident": FlowItemType.DEFECT,
    "problem": FlowItemType.DEFECT,
    "story": FlowItemType.FEATURE,
    "user story": FlowItemType.FEATURE,
    "feature": FlowItemType.FEATURE,
    "epic": FlowItemType.FEATURE,
    "improvement": FlowItemType.FEATURE,
    "new feature": FlowItemType.FEATURE,
    "requirement": FlowItemType.FEATURE,
    "product backlog item": FlowItemType.FEATURE,
    "vulnerability": FlowItemType.RISK,
    "security": FlowItemType.RISK,
    "compliance": FlowItemType.RISK,
    "risk": FlowItemType.RISK,
    "tech debt": FlowItemType.DEBT,
    "technical debt": FlowItemType.DEBT,
    "refactor": FlowItemType.DEBT,
    "chore": FlowItemType.DEBT,
    "maintenance": FlowItemType.DEBT,
}

# Labels outrank the tool type: a Story labelled "security" is risk work.
DEFAULT_LABEL_TYPES: Mapping[str, FlowItemType] = {
    "security": FlowItemType.RISK,
    "vulnerability": FlowItemType.RISK,
    "compliance": FlowItemType.RISK,
    "risk": FlowItemType.RISK,
    "tech-debt": FlowItemType.DEBT,
    "tech debt": FlowItemType.DEBT,
    "techdebt": FlowItemType.DEBT,
    "refactor": FlowItemType.DEBT,
    "chore": FlowItemType.DEBT,
    "bug": FlowItemType.DEFECT,
    "defect": FlowItemType.DEFECT,
}

DEFAULT_ENVIRONMENT_RULES: tuple[EnvironmentRule, ...] = (
    EnvironmentRule(r"pre-?prod|staging|stage|stg|uat", EnvironmentClass.STAGING),
    EnvironmentRule(r"\b(prod|production|live|prd)\b|^prod|production", EnvironmentClass.PRODUCTION),
    EnvironmentRule(r"test|qa|sit|integration", EnvironmentClass.TESTING),
    EnvironmentRule(r"dev|sandbox|local|preview|review", EnvironmentClass.DEVELOPMENT),
)


def _normalized(name: str) -> str:
    return " ".join(name.strip().lower().replace("_", " ").replace("-", " ").split())


@dataclass
class MappingRules:
    """The rules one organisation uses; explicit entries first, then the defaults and heuristics."""

    statuses: Mapping[str, StatusMapping] = field(default_factory=dict)
    item_types: Mapping[str, FlowItemType] = field(default_factory=dict)
    label_types: Mapping[str, FlowItemType] = field(default_factory=dict)
    environments: tuple[EnvironmentRule, ...] = ()
    deployment_names: DeploymentNameRule | None = None  # None: `rules.deployments.job_patterns` unset
    unmapped: dict[str, UnmappedStatus] = field(default_factory=dict, init=False, compare=False)

    def __post_init__(self) -> None:
        self._statuses = {_normalized(k): v for k, v in self.statuses.items()}
        self._item_types = {_normalized(k): v for k, v in {**DEFAULT_ITEM_TYPES, **self.item_types}.items()}
        self._label_types = {
            _normalized(k): v for k, v in {**DEFAULT_LABEL_TYPES, **self.label_types}.items()
        }

    def status(self, status: str) -> StatusMapping:
        """The flow state and stage of a tool status; heuristic guesses are recorded in `unmapped`."""
        key = _normalized(status)
        explicit = self._statuses.get(key)
        if explicit is not None:
            return explicit
        known = self.unmapped.get(key)
        if known is not None:  # guessed before: the heuristics give the same answer
            return known.guessed
        guessed = StatusMapping(FlowState.WAITING, None)
        for pattern, state, stage in _STATUS_HEURISTICS:
            if re.search(pattern, key):
                guessed = StatusMapping(state, stage)
                break
        self.unmapped[key] = UnmappedStatus(status, guessed)
        return guessed

    def flow_item_type(self, tool_type: str, labels: Iterable[str] = ()) -> FlowItemType:
        """The flow item type of an item: a label rule first, then its tool type, else `feature`."""
        for label in labels:
            by_label = self._label_types.get(_normalized(label))
            if by_label is not None:
                return by_label
        return self._item_types.get(_normalized(tool_type), FlowItemType.FEATURE)

    def environment_class(self, environment: str) -> EnvironmentClass:
        """The class of an environment by its name: the first matching rule (configured ones first)."""
        for rule in (*self.environments, *DEFAULT_ENVIRONMENT_RULES):
            if rule.matches(environment):
                return rule.klass
        return EnvironmentClass.OTHER

    def deployment_name_rule(self, tool_default: tuple[str, ...] = ()) -> DeploymentNameRule:
        """The job name rule: the configured one, else a tool's own default patterns (none for most)."""
        if self.deployment_names is not None:
            return self.deployment_names
        return _tool_default(tool_default)

    def job_environment_class(self, name: str, rule: DeploymentNameRule) -> EnvironmentClass:
        """The environment class of a deployment recognised by its job or stage name: the environment
        rules applied to the name (the generic words "stage" and "job" left out first, so "Stage 1" is not
        staging), else the rule's `environment_class`."""
        by_name = self.environment_class(_GENERIC_JOB_WORDS.sub(" ", name))
        return by_name if by_name is not EnvironmentClass.OTHER else rule.environment_class


@functools.cache
def _tool_default(patterns: tuple[str, ...]) -> DeploymentNameRule:
    return DeploymentNameRule(patterns)
