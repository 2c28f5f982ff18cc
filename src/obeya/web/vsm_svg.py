"""Draw a value stream map as SVG: stages as boxes (PT, LT, %C&A), waits on a timeline beneath them,
the bottleneck marked, and the stream's totals underneath — the classic lean VSM layout."""

from __future__ import annotations

from html import escape

from obeya.engine.stages import StageFigures, ValueStreamMap

_BOX_W, _BOX_H, _GAP, _MARGIN = 170, 118, 46, 24
_FONT = "font-family='system-ui, -apple-system, Segoe UI, sans-serif'"


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


def _stage_box(x: int, y: int, stage: StageFigures, is_bottleneck: bool) -> list[str]:
    stroke, fill = ("#c81e1e", "#fdecec") if is_bottleneck else ("#334e68", "#f0f4f8")
    lines = [
        f"<g class='stage' data-stage='{escape(stage.stage)}'>",
        f"<rect x='{x}' y='{y}' width='{_BOX_W}' height='{_BOX_H}' rx='6' fill='{fill}' stroke='{stroke}' "
        f"stroke-width='{3 if is_bottleneck else 1.5}'/>",
        f"<text x='{x + _BOX_W / 2}' y='{y + 22}' text-anchor='middle' font-weight='600' font-size='15' "
        f"{_FONT}>{escape(stage.stage)}</text>",
        f"<line x1='{x}' y1='{y + 32}' x2='{x + _BOX_W}' y2='{y + 32}' stroke='{stroke}' stroke-width='1'/>",
    ]
    rows = [
        ("PT", _duration(stage.process_time.p50)),
        ("LT", _duration(stage.lead_time.p50)),
        ("%C&A", _share(stage.complete_and_accurate.value)),
        ("WIP", "–" if stage.average_wip is None else f"{stage.average_wip:.1f}"),
    ]
    for i, (label, value) in enumerate(rows):
        ty = y + 52 + i * 18
        lines.append(
            f"<text x='{x + 12}' y='{ty}' font-size='12' fill='#52606d' {_FONT}>{escape(label)}</text>"
        )
        lines.append(
            f"<text x='{x + _BOX_W - 12}' y='{ty}' font-size='12' text-anchor='end' {_FONT}>"
            f"{escape(value)}</text>"
        )
    if is_bottleneck:
        lines.append(
            f"<text x='{x + _BOX_W / 2}' y='{y - 8}' text-anchor='middle' font-size='12' font-weight='600' "
            f"fill='#c81e1e' {_FONT}>▼ bottleneck</text>"
        )
    lines.append("</g>")
    return lines


def value_stream_map_svg(vsm: ValueStreamMap, title: str) -> str:
    """The map as a standalone SVG document."""
    stages = vsm.stages
    width = _MARGIN * 2 + len(stages) * (_BOX_W + _GAP) + 170
    box_y, line_y = 70, 70 + _BOX_H + 40
    height = line_y + 120
    bottleneck = vsm.bottleneck.stage if vsm.bottleneck else None
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img' aria-label='{escape(title)}'>",
        f"<rect width='{width}' height='{height}' fill='white'/>",
        f"<text x='{_MARGIN}' y='32' font-size='18' font-weight='600' {_FONT}>{escape(title)}</text>",
    ]
    # The timeline: waits (LT − PT, plus the wait before the stage) on the upper steps, process time on
    # the lower ones, as in a hand-drawn VSM.
    up, down = line_y, line_y + 34
    for i, stage in enumerate(stages):
        x = _MARGIN + i * (_BOX_W + _GAP)
        out += _stage_box(x, box_y, stage, stage.stage == bottleneck)
        if i:
            ax = x - _GAP
            out.append(
                f"<path d='M{ax + 6} {box_y + _BOX_H / 2} L{x - 6} {box_y + _BOX_H / 2}' stroke='#829ab1' "
                "stroke-width='2' marker-end='url(#arrow)'/>"
            )
        wait = None
        if stage.lead_time.p50 is not None:
            wait = (stage.wait_time.p50 or 0) + (stage.wait_before.p50 or 0)
        colour = "#c81e1e" if stage.stage == bottleneck else "#334e68"
        out += [
            f"<path d='M{x} {up} H{x + _BOX_W} V{down} H{x + _BOX_W + _GAP}' fill='none' stroke='{colour}' "
            "stroke-width='2'/>",
            f"<text x='{x + _BOX_W / 2}' y='{up - 6}' text-anchor='middle' font-size='12' fill='{colour}' "
            f"class='wait' {_FONT}>wait {_duration(wait)}</text>",
            f"<text x='{x + _BOX_W + _GAP / 2}' y='{down + 16}' text-anchor='middle' font-size='12' "
            f"class='process' {_FONT}>{_duration(stage.process_time.p50)}</text>",
        ]
    tx = _MARGIN + len(stages) * (_BOX_W + _GAP) + 16
    totals = [
        ("total LT", _duration(vsm.total_lead_time)),
        ("total PT", _duration(vsm.total_process_time)),
        ("activity ratio", _share(vsm.activity_ratio)),
        ("rolled %C&A", _share(vsm.rolled_complete_and_accurate)),
    ]
    for i, (label, value) in enumerate(totals):
        out.append(
            f"<text x='{tx}' y='{up + i * 20}' font-size='12' class='total' {_FONT}>"
            f"<tspan fill='#52606d'>{escape(label)}</tspan> "
            f"<tspan font-weight='600'>{escape(value)}</tspan></text>"
        )
    if vsm.bottleneck:
        b = vsm.bottleneck
        evidence = "; ".join(b.confirmed_by) or "largest share of the committed wait"
        out.append(
            f"<text x='{_MARGIN}' y='{height - 20}' font-size='12' fill='#c81e1e' {_FONT}>"
            f"Bottleneck: {escape(b.stage)} holds {b.wait_share * 100:.0f} % of the committed wait "
            f"({escape(evidence)})</text>"
        )
    out.insert(
        1,
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' "
        "orient='auto-start-reverse'><path d='M0 0 L10 5 L0 10 z' fill='#829ab1'/></marker></defs>",
    )
    out.append("</svg>")
    return "\n".join(out)
