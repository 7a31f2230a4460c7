"""The explorer's map drawn as an SVG scatter plot whose points can be clicked.

Gradio's own ScatterPlot reports only an x-range brush, not the point under a click, so
the page draws the map itself in a ``gr.HTML`` running ``SCRIPT``: one circle per entity,
coloured by a fact, and a legend (``render_map``, sent when the space or the colouring
changes), and over them the points the page asked about (``mark_props``, the component's
``marks`` prop, drawn by the script: an answer does not re-send the map's circles, whose
re-rendering would hold the browser for about half a second each time). Each entity
circle carries its row in the space (``data-row``) and its label.
"""

from __future__ import annotations

import collections
import dataclasses
import html
from typing import Sequence

import numpy as np

# Tableau's 10 colours, then 6 more unlike them: categories beyond them share OTHER.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#79706e", "#a0cbe8", "#8cd17d", "#d37295", "#b6992d",
           "#499894", "#2f2f2f")
OTHER = "#c8c8c8"
WIDTH, PAD = 640.0, 14.0
MARGIN = 0.08  # room around the entities, as a fraction of their extent, for points beyond
_MARK_LABEL_CHARS = 40

# Runs once in the browser (gr.HTML's js_on_load, with its `element`, `props`, `trigger`
# and `watch`): a click on an entity sends a click event carrying the space and the row;
# the caption names the entity or mark under the pointer; `props.marks` are drawn into the
# map's mark layer whenever they or the map change.
SCRIPT = """
element.addEventListener('click', (event) => {
  const point = event.target.closest('circle[data-row]');
  if (point) trigger('click', {space: point.closest('svg').dataset.space,
                               row: Number(point.dataset.row)});
});
element.addEventListener('mouseover', (event) => {
  const point = event.target.closest('[data-label]');
  const caption = element.querySelector('.map-caption');
  if (point && caption) caption.textContent = point.dataset.label;
});
const drawMarks = () => {
  const layer = element.querySelector('g.map-marks');
  if (!layer) return;
  const svg = (name, attributes) => {
    const node = document.createElementNS('http://www.w3.org/2000/svg', name);
    Object.entries(attributes).forEach(([key, value]) => node.setAttribute(key, value));
    return node;
  };
  layer.replaceChildren(...(props.marks || []).map((mark) => {
    const group = svg('g', {'class': 'map-mark', 'data-label': mark.label});
    group.appendChild(svg('circle', {cx: mark.x, cy: mark.y, r: 7, fill: 'none',
                                     stroke: '#000', 'stroke-width': 2.5,
                                     'stroke-dasharray': mark.beyond ? '3 2' : 'none'}));
    const text = svg('text', {x: mark.x + (mark.left ? -10 : 10), y: mark.y + 4,
                              'text-anchor': mark.left ? 'end' : 'start', 'font-size': 12});
    text.textContent = mark.short;
    group.appendChild(text);
    return group;
  }));
};
drawMarks();
watch(['value', 'marks'], drawMarks);
"""

CSS = """
circle[data-row] { cursor: pointer; }
circle[data-row]:hover { stroke: #000; stroke-width: 1.5; }
.map-mark text { paint-order: stroke; stroke: #fff; stroke-width: 3px; }
.map-title { font-weight: 600; }
.map-caption { min-height: 1.4em; font-size: 0.9em; }
.map-legend span { display: inline-block; margin-right: 0.8em; font-size: 0.85em; }
.map-legend i { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.3em;
                border-radius: 50%; }
"""


@dataclasses.dataclass(frozen=True)
class MapFrame:
    """Map coordinates -> SVG pixels (y down) of one space's map: the entities' bounding
    box, widened by MARGIN on each side, fills a WIDTH x ``height`` frame inside PAD."""

    low: np.ndarray
    high: np.ndarray
    height: float

    @classmethod
    def fit(cls, xy: np.ndarray, height: float = 460.0) -> MapFrame:
        xy = np.asarray(xy, np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) == 0:
            raise ValueError(f"a map needs [N, 2] coordinates, N >= 1; got shape {xy.shape}")
        low, high = xy.min(axis=0), xy.max(axis=0)
        room = MARGIN * np.where(high > low, high - low, 1.0)
        return cls(low - room, high + room, float(height))

    def pixels(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x and y pixels of ``points`` [N, 2], each clamped to the frame, and whether it
        lay beyond the frame."""
        unit = (np.asarray(points, np.float64) - self.low) / (self.high - self.low)
        beyond = ((unit < 0) | (unit > 1)).any(axis=1)
        unit = np.clip(unit, 0.0, 1.0)
        x = PAD + unit[:, 0] * (WIDTH - 2 * PAD)
        y = self.height - PAD - unit[:, 1] * (self.height - 2 * PAD)
        return x, y, beyond


def category_colours(values: Sequence[str]) -> dict[str, str]:
    """Value -> colour: the commonest values (ties by name) take PALETTE in order, the
    rest OTHER."""
    counts = collections.Counter(values)
    ranked = sorted(counts, key=lambda value: (-counts[value], value))
    return {value: PALETTE[i] if i < len(PALETTE) else OTHER for i, value in enumerate(ranked)}


def render_map(space: str, frame: MapFrame, xy: np.ndarray, labels: Sequence[str],
               values: Sequence[str], fact: str) -> str:
    """The map of ``space`` as HTML: an SVG of its entities at ``xy`` [N, 2] (placed by
    ``frame``) coloured by ``values`` (one per entity, of fact ``fact``), with an empty
    layer for the marks, a caption line and a legend."""
    xy = np.asarray(xy, np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or not len(labels) == len(values) == xy.shape[0]:
        raise ValueError(f"a map needs [N, 2] coordinates with one label and one {fact} "
                         f"value each; got coordinates of shape {xy.shape}, {len(labels)} "
                         f"labels and {len(values)} values")
    x, y, _ = frame.pixels(xy)
    colours = category_colours(values)
    parts = [f'<svg data-space="{html.escape(space)}" viewBox="0 0 {WIDTH:g} {frame.height:g}" '
             'width="100%" role="img" xmlns="http://www.w3.org/2000/svg">']
    for row, (label, value) in enumerate(zip(labels, values)):
        text = html.escape(f"{label} ({fact}: {value})")
        parts.append(f'<circle cx="{x[row]:.1f}" cy="{y[row]:.1f}" r="3.2" '
                     f'fill="{colours[value]}" data-row="{row}" data-label="{text}">'
                     f'<title>{text}</title></circle>')
    parts.append('<g class="map-marks"></g></svg>')
    counts = collections.Counter(values)
    legend = "".join(f'<span><i style="background:{colour}"></i>{html.escape(value)} '
                     f"({counts[value]})</span>"
                     for value, colour in colours.items() if colour != OTHER)
    others = sum(counts[value] for value, colour in colours.items() if colour == OTHER)
    if others:
        legend += f'<span><i style="background:{OTHER}"></i>other ({others})</span>'
    return (f'<div class="map-title">{html.escape(space)}: its top two principal '
            'components</div><div class="map-caption">point at an entity to name it; click '
            f"it to ask about it</div>{''.join(parts)}<div class=\"map-legend\">{fact}: "
            f"{legend}</div>")


def mark_props(frame: MapFrame, marks: Sequence[tuple[np.ndarray, str]]) -> list[dict]:
    """The ``marks`` prop of the map for points ``marks`` ((map coordinates [2], label)):
    pixel position (clamped to the frame; ``beyond`` where it was outside, drawn dashed),
    label, shortened label and the side it is written on."""
    if not marks:
        return []
    x, y, beyond = frame.pixels(np.stack([np.asarray(c, np.float64) for c, _ in marks]))
    return [{"x": round(float(x[i]), 1), "y": round(float(y[i]), 1), "label": label,
             "short": (label if len(label) <= _MARK_LABEL_CHARS
                       else label[:_MARK_LABEL_CHARS - 1] + "…"),
             "left": bool(x[i] > WIDTH / 2), "beyond": bool(beyond[i])}
            for i, (_, label) in enumerate(marks)]
