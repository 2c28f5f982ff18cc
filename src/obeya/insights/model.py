"""The typed results of the insights: insights, waste signals and maturity scores (docs/insights.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

ITEM_LIMIT = 20
"""At most this many items (worst first) are carried by one insight or signal."""


@dataclass(frozen=True)
class Insight:
    """A bottleneck or a recommendation: what fired, on which figure, and the items behind it.

    An insight is only ever made from evidence: `figure` is the number that triggered `rule`, and
    `items` (work item keys, change or deployment ids) are the records behind it.
    """

    kind: str  # "bottleneck" or "recommendation"
    title: str
    value_stream_id: str | None
    figure: float
    unit: str
    rule: str
    evidence: str
    items: list[str] = field(default_factory=list)


class Severity(StrEnum):
    """How far a waste signal is past its threshold."""

    NO_DATA = "no data"
    LOW = "low"  # below the threshold
    MEDIUM = "medium"  # at or past the threshold
    HIGH = "high"  # at or past the high mark


@dataclass(frozen=True)
class WasteSignal:
    """One lean DOWNTIME waste category measured by one signal; `figure` is None when there is no data."""

    category: str
    figure: float | None
    unit: str
    threshold: float
    severity: Severity
    items: list[str]
    explanation: str


def severity(figure: float | None, threshold: float, high: float) -> Severity:
    """The severity of a figure against its threshold and high mark (higher is worse)."""
    if figure is None:
        return Severity.NO_DATA
    if figure >= high:
        return Severity.HIGH
    if figure >= threshold:
        return Severity.MEDIUM
    return Severity.LOW


class MaturityLevel(StrEnum):
    """The four levels of the maturity model, lowest first."""

    EMERGING = "Emerging"
    LEARNING = "Learning"
    PRACTICING = "Practicing"
    EVOLVING = "Evolving"

    @property
    def score(self) -> int:
        """1 (Emerging) to 4 (Evolving)."""
        return list(MaturityLevel).index(self) + 1


@dataclass(frozen=True)
class DimensionScore:
    """One dimension of a stream's maturity: its level (None: no data), the figure and why."""

    dimension: str
    level: MaturityLevel | None
    figure: float | None
    unit: str
    evidence: str


@dataclass(frozen=True)
class StreamMaturity:
    """The maturity of one value stream on the five dimensions."""

    value_stream_id: str
    name: str
    dimensions: list[DimensionScore]

    def level(self, dimension: str) -> MaturityLevel | None:
        """The level of one dimension by name."""
        return next((d.level for d in self.dimensions if d.dimension == dimension), None)
