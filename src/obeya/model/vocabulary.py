"""The field's vocabulary: flow states, flow item types, stage categories, environment classes.

These are the closed sets every tool's own words are normalized into (see docs/metrics.md).
"""

from enum import StrEnum


class FlowState(StrEnum):
    """Where a work item stands in the Flow Framework's sense."""

    NEW = "new"  # opened, not committed to
    WAITING = "waiting"  # committed, nobody working on it (To Do, Blocked, Ready for Release, ...)
    ACTIVE = "active"  # somebody is working on it (In Progress, In Review, Testing)
    DONE = "done"
    CANCELED = "canceled"


class FlowItemType(StrEnum):
    """The four flow item types of the Flow Framework."""

    FEATURE = "feature"
    DEFECT = "defect"
    RISK = "risk"
    DEBT = "debt"


class StageCategory(StrEnum):
    """The five default stages of a value stream, in order."""

    IDEATION = "ideation"
    INTEGRATION = "integration"
    VERIFICATION = "verification"
    DELIVERY = "delivery"
    OBSERVATION = "observation"


class EnvironmentClass(StrEnum):
    """What an environment is for; DORA counts only `production`."""

    PRODUCTION = "production"
    STAGING = "staging"
    TESTING = "testing"
    DEVELOPMENT = "development"
    OTHER = "other"
