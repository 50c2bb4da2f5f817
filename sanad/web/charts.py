"""Server-side SVG charts: horizontal bars for categories, columns for a time series.

Why hand-written SVG and not a JS chart library: the dashboard must work without JavaScript,
print cleanly and stay readable by screen readers (each chart is `role="img"` with a title
and the numbers are also in a table next to it). Labels are escaped; in a right-to-left page
the bars grow from the right (`direction` parameter).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

_BAR_H = 22
_GAP = 6
_LABEL_W = 130
_WIDTH = 460
_COLOURS = ("#0b6e4f", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#577590")


def bar_chart(
    title: str, data: Sequence[tuple[str, int]], *, chart_id: str, rtl: bool = False
) -> Markup:
    """Horizontal bars, one per (label, value)."""
    rows = list(data) or [("—", 0)]
    top = max(v for _, v in rows) or 1
    height = len(rows) * (_BAR_H + _GAP) + _GAP
    span = _WIDTH - _LABEL_W - 60
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" role="img" '
        f'aria-labelledby="{escape(chart_id)}-t" direction="ltr" style="direction:ltr"'
        f' viewBox="0 0 {_WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
    ]
    for i, (label, value) in enumerate(rows):
        y = _GAP + i * (_BAR_H + _GAP)
        w = max(1.0, span * value / top) if value else 0.0
        colour = _COLOURS[i % len(_COLOURS)]
        if rtl:
            x_label, anchor_label = _WIDTH - 4, "end"
            x_bar = _WIDTH - _LABEL_W - w
            x_val, anchor_val = x_bar - 4, "end"
        else:
            x_label, anchor_label = _LABEL_W - 6, "end"
            x_bar = float(_LABEL_W)
            x_val, anchor_val = x_bar + w + 4, "start"
        parts.append(
            f'<text x="{x_label}" y="{y + 15}" text-anchor="{anchor_label}" class="lbl">'
            f"{escape(label)}</text>"
            f'<rect x="{x_bar:.1f}" y="{y}" width="{w:.1f}" height="{_BAR_H}" fill="{colour}">'
            f"<title>{escape(label)}: {value}</title></rect>"
            f'<text x="{x_val:.1f}" y="{y + 15}" text-anchor="{anchor_val}" class="val">{value}'
            "</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def column_chart(
    title: str, data: Sequence[tuple[str, int]], *, chart_id: str, rtl: bool = False
) -> Markup:
    """Vertical columns over time (oldest first; mirrored in a right-to-left page)."""
    rows = list(data) or [("—", 0)]
    if rtl:
        rows = rows[::-1]
    top = max(v for _, v in rows) or 1
    height, base = 180, 150
    step = (_WIDTH - 20) / len(rows)
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" role="img" '
        f'aria-labelledby="{escape(chart_id)}-t" direction="ltr" style="direction:ltr"'
        f' viewBox="0 0 {_WIDTH} {height}" width="100%">',
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
        f'<line x1="10" y1="{base}" x2="{_WIDTH - 10}" y2="{base}" stroke="#999"/>',
        f'<text x="12" y="14" class="val">max {top}</text>',
    ]
    for i, (label, value) in enumerate(rows):
        h = (base - 20) * value / top
        x = 10 + i * step
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{base - h:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="{_COLOURS[0]}"><title>{escape(label)}: {value}</title></rect>'
        )
    first, last = (rows[0][0], rows[-1][0])
    parts.append(f'<text x="10" y="{base + 16}" class="lbl">{escape(first)}</text>')
    parts.append(
        f'<text x="{_WIDTH - 10}" y="{base + 16}" text-anchor="end" class="lbl">{escape(last)}'
        "</text>"
    )
    parts.append("</svg>")
    return Markup("".join(parts))
