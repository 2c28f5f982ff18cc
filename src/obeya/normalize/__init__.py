"""Mapping rules: tool statuses to flow states and stages, tool types to flow item types, environments
to environment classes. Defaults work for the tools' stock workflows; `obeya.yaml` overrides them."""

from obeya.normalize.rules import (
    EnvironmentRule,
    MappingRules,
    StatusMapping,
    UnmappedStatus,
)

__all__ = ["EnvironmentRule", "MappingRules", "StatusMapping", "UnmappedStatus"]
