"""The rules `derive_links` follows; every field has the default documented in docs/traceability.md."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from types import MappingProxyType

JIRA_KEY = r"\b([A-Z][A-Z0-9]{1,9}-\d+)\b"
"""A Jira-style key (``PAY-123``): an upper-case project key, a hyphen, a number."""

GITHUB_ISSUE = r"(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)?\s*#(\d+)\b"
"""A GitHub-style reference (``#12``, ``fixes #12``): looked up as key ``{repo}#12``, then ``#12``."""

CHANGE_NUMBER = r"\b(CHG\d+)\b"
"""A change request number (ServiceNow's ``CHG0030001``)."""


@dataclass(frozen=True)
class LinkingRules:
    """How links are derived.

    - `key_patterns`: regular expressions (Python `re`) with one group that captures a work item key.
      A capture made only of digits is a GitHub-style issue number: in a commit or change of repository
      ``R`` it matches the work item whose key is ``R#N``, and the one whose key is ``#N``.
    - `incident_attribution_window`: how long after a production deployment finished an incident can
      still be attributed to it by the time rule.
    - `service_paths`: service → repository → path prefixes, for monorepos: a deployment of that service
      from that repository ships only commits touching one of the prefixes.
    - `production_class`: the environment class the incident and change request time rules look at.
    - `change_number_pattern`: a regular expression with one group capturing a change request number; a
      deployment whose texts name one is covered by the release of that name (docs/traceability.md).
    """

    key_patterns: tuple[str, ...] = (JIRA_KEY, GITHUB_ISSUE)
    incident_attribution_window: timedelta = timedelta(hours=24)
    service_paths: Mapping[str, Mapping[str, tuple[str, ...]]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    production_class: str = "production"
    change_number_pattern: str = CHANGE_NUMBER

    def __post_init__(self) -> None:
        named = [("key pattern", p) for p in self.key_patterns]
        for what, pattern in [*named, ("change number pattern", self.change_number_pattern)]:
            try:
                compiled = re.compile(pattern)
            except re.error as error:
                raise ValueError(f"{what} {pattern!r} is not a valid regular expression: {error}") from error
            if compiled.groups != 1:
                raise ValueError(
                    f"{what} {pattern!r} must have exactly one group capturing the key, "
                    f"it has {compiled.groups}"
                )
        if self.incident_attribution_window <= timedelta(0):
            raise ValueError("incident_attribution_window must be positive")

    @cached_property
    def compiled_patterns(self) -> tuple[re.Pattern[str], ...]:
        """The key patterns, compiled."""
        return tuple(re.compile(p) for p in self.key_patterns)

    @cached_property
    def compiled_change_number(self) -> re.Pattern[str]:
        """The change number pattern, compiled."""
        return re.compile(self.change_number_pattern)

    def path_prefixes(self, service: str, repo: str) -> tuple[str, ...] | None:
        """The path prefixes of `service` in `repo`, or None when the whole repository is the service's."""
        prefixes = self.service_paths.get(service, {}).get(repo)
        return tuple(prefixes) if prefixes else None
