"""Draw a value stream map as SVG: stages as boxes (PT, LT, %C&A), waits on a timeline beneath them,
the bottleneck marked, and the stream's totals underneath — the classic lean VSM layout.

Given the map of the previous window of the same length (`obeya.engine.stage_comparison`), every box,
wait and total also shows the previous figure in grey, with an arrow where the shown figure moved
(green when it got better — shorter times, higher %C&A — red when worse, grey for WIP), and the
previous window's bottleneck is named underneath: the same comparison the `obeya vsm` table prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from html import escape

from obeya.engine.stages import StageFigures, ValueStreamMap
from obeya.engine.window import Window

_BOX_W, _BOX_H, _GAP, _MARGIN = 170, 118, 46, 24
_PREVIOUS_BOX_H = 132  # one row more: the "now / prev" column heads
_TOTALS_W, _PREVIOUS_TOTALS_W = 170, 240
_FONT = "font-family='system-ui, -apple-system, Segoe UI, sans-serif'"
_GREY, _BETTER, _WORSE = "#829ab1", "#1f7a4d", "#c81e1e"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


def _wip(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _days(window: Window) -> str:
    return f"{window.start.date()} to {(window.end - timedelta(days=1)).date()}"


@dataclass(frozen=True)
class _Figure:
    """One figure now and in the previous window, how it is shown, and which way is better (None:
    neither, as for WIP)."""

    label: str
    now: float | None
    before: float | None
    show: Callable[[float | None], str]
    lower_is_better: bool | None

    @property
    def shown(self) -> tuple[str, str]:
        return self.show(self.now), self.show(self.before)

    def arrow(self) -> str:
        return _arrow(self.now, self.before, self.shown, self.lower_is_better)


def _arrow(
    now: float | None, before: float | None, shown: tuple[str, str], lower_is_better: bool | None
) -> str:
    """An SVG ``tspan`` marking how a figure moved, or "" when either side has no data or the shown
    values are the same (a change below the display's precision is not a change to the reader)."""
    if now is None or before is None or shown[0] == shown[1]:
        return ""
    up = now > before
    colour = _GREY if lower_is_better is None else _WORSE if up == lower_is_better else _BETTER
    return f"<tspan fill='{colour}' class='moved'>{'▲' if up else '▼'}</tspan>"


def _wait(stage: StageFigures | None) -> float | None:
    """The wait drawn on the timeline: time in the stage not worked, plus the wait before it."""
    if stage is None or stage.lead_time.p50 is None:
        return None
    return (stage.wait_time.p50 or 0) + (stage.wait_before.p50 or 0)


def _stage_box(
    x: int, y: int, stage: StageFigures, is_bottleneck: bool, before: StageFigures | None, compared: bool
) -> list[str]:
    stroke, fill = ("#c81e1e", "#fdecec") if is_bottleneck else ("#334e68", "#f0f4f8")
    height = _PREVIOUS_BOX_H if compared else _BOX_H
    lines = [
        f"<g class='stage' data-stage='{escape(stage.stage)}'>",
        f"<rect x='{x}' y='{y}' width='{_BOX_W}' height='{height}' rx='6' fill='{fill}' stroke='{stroke}' "
        f"stroke-width='{3 if is_bottleneck else 1.5}'/>",
        f"<text x='{x + _BOX_W / 2}' y='{y + 22}' text-anchor='middle' font-weight='600' font-size='15' "
        f"{_FONT}>{escape(stage.stage)}</text>",
        f"<line x1='{x}' y1='{y + 32}' x2='{x + _BOX_W}' y2='{y + 32}' stroke='{stroke}' stroke-width='1'/>",
    ]
    figures = [
        _Figure("PT", stage.process_time.p50, before.process_time.p50 if before else None, _duration, True),
        _Figure("LT", stage.lead_time.p50, before.lead_time.p50 if before else None, _duration, True),
        _Figure(
            "%C&A",
            stage.complete_and_accurate.value,
            before.complete_and_accurate.value if before else None,
            _share,
            False,
        ),
        _Figure("WIP", stage.average_wip, before.average_wip if before else None, _wip, None),
    ]
    first = y + 52
    if compared:
        first = y + 64
        lines += _column_heads(x + 104, x + _BOX_W - 10, y + 47)
    for i, figure in enumerate(figures):
        ty = first + i * 18
        label = escape(figure.label)
        now, previous = (escape(value) for value in figure.shown)
        lines.append(f"<text x='{x + 12}' y='{ty}' font-size='12' fill='#52606d' {_FONT}>{label}</text>")
        if not compared:
            lines.append(
                f"<text x='{x + _BOX_W - 12}' y='{ty}' font-size='12' text-anchor='end' {_FONT}>{now}</text>"
            )
            continue
        lines += [
            f"<text x='{x + 104}' y='{ty}' font-size='12' text-anchor='end' class='now' "
            f"data-figure='{label}' {_FONT}>{now}</text>",
            f"<text x='{x + 107}' y='{ty}' font-size='10' {_FONT}>{figure.arrow()}</text>",
            f"<text x='{x + _BOX_W - 10}' y='{ty}' font-size='11' text-anchor='end' fill='{_GREY}' "
            f"class='previous' data-figure='{label}' {_FONT}>{previous}</text>",
        ]
    if is_bottleneck:
        lines.append(
            f"<text x='{x + _BOX_W / 2}' y='{y - 8}' text-anchor='middle' font-size='12' font-weight='600' "
            f"fill='#c81e1e' {_FONT}>▼ bottleneck</text>"
        )
    lines.append("</g>")
    return lines


def _column_heads(now_x: float, previous_x: float, y: float) -> list[str]:
    """The "now" and "prev" heads over a column pair of figures, right-aligned at their x."""
    return [
        f"<text x='{hx}' y='{y}' font-size='10' text-anchor='end' fill='{_GREY}' "
        f"class='column' {_FONT}>{head}</text>"
        for head, hx in (("now", now_x), ("prev", previous_x))
    ]


def _totals(vsm: ValueStreamMap, previous: ValueStreamMap | None, tx: int, y: int) -> list[str]:
    rows = [
        _Figure(
            "total LT", vsm.total_lead_time, previous.total_lead_time if previous else None, _duration, True
        ),
        _Figure(
            "total PT",
            vsm.total_process_time,
            previous.total_process_time if previous else None,
            _duration,
            True,
        ),
        _Figure(
            "activity ratio", vsm.activity_ratio, previous.activity_ratio if previous else None, _share, False
        ),
        _Figure(
            "rolled %C&A",
            vsm.rolled_complete_and_accurate,
            previous.rolled_complete_and_accurate if previous else None,
            _share,
            False,
        ),
    ]
    out = []
    if previous is not None:
        out += _column_heads(tx + 150, tx + _PREVIOUS_TOTALS_W - 20, y - 18)
    for i, figure in enumerate(rows):
        ty = y + i * 20
        label = escape(figure.label)
        now, before = (escape(value) for value in figure.shown)
        if previous is None:
            out.append(
                f"<text x='{tx}' y='{ty}' font-size='12' class='total' {_FONT}>"
                f"<tspan fill='#52606d'>{label}</tspan> <tspan font-weight='600'>{now}</tspan></text>"
            )
            continue
        out += [
            f"<text x='{tx}' y='{ty}' font-size='12' fill='#52606d' {_FONT}>{label}</text>",
            f"<text x='{tx + 150}' y='{ty}' font-size='12' font-weight='600' text-anchor='end' "
            f"class='total' data-figure='{label}' {_FONT}>{now}</text>",
            f"<text x='{tx + 153}' y='{ty}' font-size='10' {_FONT}>{figure.arrow()}</text>",
            f"<text x='{tx + _PREVIOUS_TOTALS_W - 20}' y='{ty}' font-size='11' text-anchor='end' "
            f"fill='{_GREY}' class='previous-total' data-figure='{label}' {_FONT}>{before}</text>",
        ]
    return out


def value_stream_map_svg(vsm: ValueStreamMap, title: str, previous: ValueStreamMap | None = None) -> str:
    """The map as a standalone SVG document; with `previous` (the map of the window of the same length
    just before), each figure beside its previous value."""
    stages = vsm.stages
    compared = previous is not None
    before = {s.stage: s for s in previous.stages} if previous is not None else {}
    box_h = _PREVIOUS_BOX_H if compared else _BOX_H
    width = _MARGIN * 2 + len(stages) * (_BOX_W + _GAP) + (_PREVIOUS_TOTALS_W if compared else _TOTALS_W)
    box_y = 70
    line_y = box_y + box_h + 40
    height = line_y + (138 if compared else 120)
    bottleneck = vsm.bottleneck.stage if vsm.bottleneck else None
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img' aria-label='{escape(title)}'>",
        f"<rect width='{width}' height='{height}' fill='white'/>",
        f"<text x='{_MARGIN}' y='32' font-size='18' font-weight='600' {_FONT}>{escape(title)}</text>",
    ]
    if previous is not None:
        out.append(
            f"<text x='{_MARGIN}' y='50' font-size='12' fill='#52606d' class='previous-window' {_FONT}>"
            f"Medians. prev (grey): the {previous.window.days:g} days before, "
            f"{escape(_days(previous.window))}; ▲▼ where a figure moved (green: better, red: worse)</text>"
        )
    # The timeline: waits (LT − PT, plus the wait before the stage) on the upper steps, process time on
    # the lower ones, as in a hand-drawn VSM.
    up, down = line_y, line_y + 34
    for i, stage in enumerate(stages):
        x = _MARGIN + i * (_BOX_W + _GAP)
        out += _stage_box(x, box_y, stage, stage.stage == bottleneck, before.get(stage.stage), compared)
        if i:
            ax = x - _GAP
            out.append(
                f"<path d='M{ax + 6} {box_y + box_h / 2} L{x - 6} {box_y + box_h / 2}' stroke='#829ab1' "
                "stroke-width='2' marker-end='url(#arrow)'/>"
            )
        wait = _wait(stage)
        colour = "#c81e1e" if stage.stage == bottleneck else "#334e68"
        was = ""
        if compared:
            waited = _Figure("wait", wait, _wait(before.get(stage.stage)), _duration, True)
            moved = waited.arrow()
            was = (
                f"{' ' + moved if moved else ''}<tspan fill='{_GREY}' class='previous'> prev "
                f"{escape(waited.shown[1])}</tspan>"
            )
        out += [
            f"<path d='M{x} {up} H{x + _BOX_W} V{down} H{x + _BOX_W + _GAP}' fill='none' stroke='{colour}' "
            "stroke-width='2'/>",
            f"<text x='{x + _BOX_W / 2}' y='{up - 6}' text-anchor='middle' font-size='12' fill='{colour}' "
            f"class='wait' data-stage='{escape(stage.stage)}' {_FONT}>wait {_duration(wait)}{was}</text>",
            f"<text x='{x + _BOX_W + _GAP / 2}' y='{down + 16}' text-anchor='middle' font-size='12' "
            f"class='process' {_FONT}>{_duration(stage.process_time.p50)}</text>",
        ]
    tx = _MARGIN + len(stages) * (_BOX_W + _GAP) + 16
    out += _totals(vsm, previous, tx, up)
    if vsm.bottleneck:
        b = vsm.bottleneck
        evidence = "; ".join(b.confirmed_by) or "largest share of the committed wait"
        out.append(
            f"<text x='{_MARGIN}' y='{height - (38 if compared else 20)}' font-size='12' fill='#c81e1e' "
            f"{_FONT}>Bottleneck: {escape(b.stage)} holds {b.wait_share * 100:.0f} % of the committed wait "
            f"({escape(evidence)})</text>"
        )
    if previous is not None:
        said = (
            f"bottleneck {escape(previous.bottleneck.stage)}, {previous.bottleneck.wait_share * 100:.0f} % "
            "of the committed wait"
            if previous.bottleneck
            else "no bottleneck (no committed wait)"
        )
        out.append(
            f"<text x='{_MARGIN}' y='{height - 18}' font-size='12' fill='#52606d' "
            f"class='previous-bottleneck' {_FONT}>Previous {previous.window.days:g} days "
            f"({escape(_days(previous.window))}): {said}</text>"
        )
    out.insert(
        1,
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' "
        "orient='auto-start-reverse'><path d='M0 0 L10 5 L0 10 z' fill='#829ab1'/></marker></defs>",
    )
    out.append("</svg>")
    return "\n".join(out)
