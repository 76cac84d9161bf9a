"""Small, dependency-free SVG charts for the benchmark report: grouped bars and lines."""

from __future__ import annotations

import math
from html import escape

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
W, H, LEFT, RIGHT, TOP, BOTTOM = 760, 400, 80, 170, 40, 70


def _frame(title: str, y_label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{LEFT}" y="24" font-size="14">{escape(title)}</text>',
        f'<text x="18" y="{TOP + (H - TOP - BOTTOM) / 2}" transform="rotate(-90 18 {TOP + (H - TOP - BOTTOM) / 2})" '
        f'text-anchor="middle">{escape(y_label)}</text>',
    ]


def _y_axis(parts: list[str], y_max: float, log: bool, y_min: float) -> callable:
    plot_h = H - TOP - BOTTOM
    plot_w = W - LEFT - RIGHT
    if log:
        lo, hi = math.floor(math.log10(max(y_min, 1e-9))), math.ceil(math.log10(max(y_max, 1e-9)))
        hi = max(hi, lo + 1)
        ticks = [10.0 ** e for e in range(lo, hi + 1)]

        def y(v: float) -> float:
            return TOP + plot_h * (1 - (math.log10(max(v, 10.0 ** lo)) - lo) / (hi - lo))
    else:
        step = _nice_step(y_max / 5 if y_max > 0 else 1)
        top = step * math.ceil(y_max / step) if y_max > 0 else 1
        ticks = [step * i for i in range(int(round(top / step)) + 1)]

        def y(v: float) -> float:
            return TOP + plot_h * (1 - v / top)
    for tick in ticks:
        parts.append(f'<line x1="{LEFT}" y1="{y(tick):.1f}" x2="{LEFT + plot_w}" y2="{y(tick):.1f}" stroke="#eee"/>'
                     f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>')
    return y


def _nice_step(raw: float) -> float:
    exp = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * exp:
            return m * exp
    return 10 * exp


def _fmt(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:g}"
    return f"{v:.3g}"


def _legend(parts: list[str], names: list[str]) -> None:
    x = W - RIGHT + 14
    for i, name in enumerate(names):
        y = TOP + 16 + 20 * i
        parts.append(f'<rect x="{x}" y="{y - 9}" width="14" height="10" fill="{COLORS[i % len(COLORS)]}"/>'
                     f'<text x="{x + 20}" y="{y}">{escape(name)}</text>')


def bars(title: str, y_label: str, groups: list[str], series: dict[str, list[float | None]], log: bool = False) -> str:
    """Grouped bars: one group per label in `groups`, one bar per series (None = no bar)."""
    parts = _frame(title, y_label)
    values = [v for vs in series.values() for v in vs if v]
    y = _y_axis(parts, max(values, default=1), log, min(values, default=1))
    plot_w = W - LEFT - RIGHT
    group_w = plot_w / max(len(groups), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    base = TOP + (H - TOP - BOTTOM)
    for g, label in enumerate(groups):
        gx = LEFT + g * group_w + group_w * 0.1
        parts.append(f'<text x="{LEFT + (g + 0.5) * group_w:.1f}" y="{base + 18}" text-anchor="middle">{escape(label)}</text>')
        for s, (name, vs) in enumerate(series.items()):
            v = vs[g] if g < len(vs) else None
            if not v:
                continue
            top = y(v)
            parts.append(f'<rect data-series="{escape(name)}" x="{gx + s * bar_w:.1f}" y="{top:.1f}" width="{bar_w * 0.95:.1f}" '
                         f'height="{base - top:.1f}" fill="{COLORS[s % len(COLORS)]}"><title>{escape(name)}: {_fmt(v)}</title></rect>')
    _legend(parts, list(series))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def lines(title: str, x_label: str, y_label: str, xs: list[float], series: dict[str, list[float | None]],
          log: bool = False) -> str:
    """Lines over categorical x positions `xs` (e.g. concurrency 1, 8, 32, 64)."""
    parts = _frame(title, y_label)
    values = [v for vs in series.values() for v in vs if v]
    y = _y_axis(parts, max(values, default=1), log, min(values, default=1))
    plot_w = W - LEFT - RIGHT
    base = TOP + (H - TOP - BOTTOM)

    def x(i: int) -> float:
        return LEFT + plot_w * (i + 0.5) / len(xs)
    for i, label in enumerate(xs):
        parts.append(f'<text x="{x(i):.1f}" y="{base + 18}" text-anchor="middle">{_fmt(label)}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{H - 20}" text-anchor="middle">{escape(x_label)}</text>')
    for s, (name, vs) in enumerate(series.items()):
        points = [f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vs) if v]
        color = COLORS[s % len(COLORS)]
        parts.append(f'<polyline data-series="{escape(name)}" fill="none" stroke="{color}" stroke-width="2" points="{" ".join(points)}"/>')
        for point in points:
            px, py = point.split(",")
            parts.append(f'<circle cx="{px}" cy="{py}" r="3" fill="{color}"/>')
    _legend(parts, list(series))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
