"""What counts as a deployment and as an incident for DORA (obeya.yaml ``rules.deployments`` and
``rules.incidents``; docs/configuration.md).

These rules apply when a figure is computed, as SQL conditions on the stored deployments and incidents,
so changing them needs no re-sync and no replay. The values are written into the SQL as quoted literals
(not parameters) so that every DORA condition stays one string the metric and evidence queries share.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
"""Incident severities, most severe first (the incident connectors normalize to these)."""

DEPLOYMENT_RESULTS = ("success", "failure", "rolled_back")
"""The results of a finished deployment that may count toward deployment frequency."""


def literal(text: str) -> str:
    """`text` as an SQL string literal (standard quoting; both engines read backslashes literally)."""
    return "'" + text.replace("'", "''") + "'"


def _lowered_in(column: str, values: tuple[str, ...]) -> str:
    return f"LOWER({column}) IN ({', '.join(literal(v.strip().lower()) for v in values)})"


def _label_pattern(label: str) -> str:
    """A LIKE pattern (escape ``\\``) finding `label` as an element of a stored JSON array of labels."""
    element = orjson.dumps(label.strip().lower()).decode()
    escaped = element.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class DeploymentRules:
    """Which production deployments DORA counts.

    `frequency_results`: results counted by deployment frequency and rework rate (default success).
    `count_rollbacks`: whether rollback deployments count as deployments (default no: they remediate).
    `exclude_services`, `exclude_environments`: names (case-insensitive) whose deployments never count.
    """

    frequency_results: tuple[str, ...] = ("success",)
    count_rollbacks: bool = False
    exclude_services: tuple[str, ...] = ()
    exclude_environments: tuple[str, ...] = ()

    def counted(self, alias: str = "d") -> str:
        """SQL: the deployment `alias` is not excluded (rollbacks left out unless counted)."""
        parts = [] if self.count_rollbacks else [f"NOT {alias}.is_rollback"]
        if self.exclude_services:
            parts.append(f"NOT {_lowered_in(f'{alias}.service', self.exclude_services)}")
        if self.exclude_environments:
            parts.append(f"NOT {_lowered_in(f'{alias}.environment', self.exclude_environments)}")
        return "(" + " AND ".join(parts) + ")" if parts else "TRUE"

    def frequency_result(self, alias: str = "d") -> str:
        """SQL: the deployment `alias` has a result deployment frequency counts."""
        return f"{alias}.result IN ({', '.join(literal(r) for r in self.frequency_results)})"


@dataclass(frozen=True)
class IncidentRules:
    """Which incidents DORA counts.

    `min_severity`: the least severe level that counts (sev1 most severe; default: every incident). An
    incident without a severity counts (nothing says it is minor). `not_change_caused_labels` and
    `not_change_caused_services`: incidents with one of these labels or services (case-insensitive) were
    caused by no change (a provider's outage): they never make a deployment failed.
    """

    min_severity: str | None = None
    not_change_caused_labels: tuple[str, ...] = ()
    not_change_caused_services: tuple[str, ...] = ()

    def counted(self, alias: str = "i") -> str:
        """SQL: the incident `alias` is severe enough to count."""
        if self.min_severity is None:
            return "TRUE"
        kept = SEVERITIES[: SEVERITIES.index(self.min_severity) + 1]
        return f"({alias}.severity IS NULL OR {_lowered_in(f'{alias}.severity', kept)})"

    def change_caused(self, alias: str = "i") -> str:
        """SQL: the incident `alias` counts and may have been caused by a change (not ruled out by the
        connector's ``change_caused = false`` nor by these rules)."""
        parts = [f"COALESCE({alias}.change_caused, TRUE)", self.counted(alias)]
        if self.not_change_caused_services:
            parts.append(
                f"NOT COALESCE({_lowered_in(f'{alias}.service', self.not_change_caused_services)}, FALSE)"
            )
        for label in self.not_change_caused_labels:
            pattern = literal(_label_pattern(label))
            parts.append(f"LOWER(CAST({alias}.labels AS VARCHAR)) NOT LIKE {pattern} ESCAPE '\\'")
        return "(" + " AND ".join(parts) + ")"


@dataclass(frozen=True)
class DoraRules:
    """The deployment and incident rules DORA figures follow."""

    deployments: DeploymentRules = DeploymentRules()
    incidents: IncidentRules = IncidentRules()


DEFAULT_DORA_RULES = DoraRules()
