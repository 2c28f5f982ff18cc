"""The bottleneck of each value stream, from its value stream map (docs/insights.md, "Bottleneck")."""

from __future__ import annotations

from obeya.engine.dora_rules import DEFAULT_DORA_RULES, DoraRules
from obeya.engine.stages import Bottleneck, ValueStreamMap, value_stream_map
from obeya.engine.timeline import WorkStart
from obeya.engine.window import Slice, Window
from obeya.insights.model import Insight
from obeya.insights.scope import stream_slices
from obeya.store import Store

BOTTLENECK_RULE = (
    "theory of constraints: the stage with the largest share of the stream's committed wait, confirmed "
    "by its queue growing or by it holding the most waiting items"
)


def bottleneck_insight(value_stream_id: str | None, name: str, bottleneck: Bottleneck) -> Insight:
    """The insight a value stream map's bottleneck makes: its stage, wait share and items."""
    confirmed = "; ".join(bottleneck.confirmed_by) or "not confirmed by queue growth or waiting items"
    return Insight(
        kind="bottleneck",
        title=f"{name}: bottleneck at {bottleneck.stage}",
        value_stream_id=value_stream_id,
        figure=bottleneck.wait_share,
        unit="share",
        rule=BOTTLENECK_RULE,
        evidence=f"{bottleneck.wait_share * 100:.0f} % of the committed wait is in {bottleneck.stage} "
        f"({confirmed})",
        items=[key for key, _ in bottleneck.items],
    )


def bottlenecks(
    store: Store,
    window: Window,
    scope: Slice = Slice(),
    work_start: WorkStart = "active",
    rules: DoraRules = DEFAULT_DORA_RULES,
) -> list[Insight]:
    """The bottleneck of the scope's value stream (or of every stream), with the items behind it.

    A stream with no committed wait in the window has no bottleneck and gives no insight.
    """
    found = []
    for stream_scope, name in stream_slices(store, scope):
        stream_map = value_stream_map(store, window, stream_scope, work_start, rules)
        insight = map_bottleneck(stream_scope.value_stream_id, name, stream_map)
        if insight is not None:
            found.append(insight)
    return found


def map_bottleneck(value_stream_id: str | None, name: str, stream_map: ValueStreamMap) -> Insight | None:
    """The bottleneck insight of a value stream map already computed, or None when the map has no
    bottleneck with items behind it."""
    bottleneck = stream_map.bottleneck
    if bottleneck is None or not bottleneck.items:
        return None
    return bottleneck_insight(value_stream_id, name, bottleneck)
