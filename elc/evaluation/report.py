"""A Markdown report, with matplotlib figures, of an evaluation's results dict.

:func:`write_report` turns the JSON-able results of the evaluator (the dict it also saves
as ``results.json``) into ``report.md`` and ``figures/*.png`` beside it, readable on
GitHub. Only ``variants`` and ``per_task`` are required; every other section of the
results is optional and its part of the report is skipped when absent.

Numbers are shown with 3 decimals, ranks with 1, missing values (None, NaN) as "–". In a
metric row the best variant is in bold: the highest value, or the lowest for metrics whose
name contains "error" or "rank". The output depends on ``results`` only (no clock).
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

# The backend is chosen before pyplot is imported: no display, deterministic output.
matplotlib.use("Agg")
import matplotlib.pyplot as plt

DASH = "–"
DPI = 110
# Metrics whose name contains one of these are better when lower.
LOWER_IS_BETTER = ("error", "rank")
# Exact-fact accuracies (averaged in the summary): names with this, outside the consistency
# metrics (sc_*, bc_*).
ACCURACY_MARKER = "accuracy"
CONSISTENCY_PREFIXES = ("sc_", "bc_")
MAP_TEXT_CHARS = 60
CEILINGS_NOTE = (
    "What the vectors hold: *probe (space)* is a linear (ridge) probe from that space's "
    "vectors to each fact, fitted on the training entities and scored on the same held-out "
    "examples with the same metric; *commonest* always gives the most frequent training "
    "answer (the median of a number). The last column divides the trained model's score by "
    "the probe's of the space it read (for errors, below 1 is better than the probe).")


# ---------------------------------------------------------------------------- formatting


def _missing(value: Any) -> bool:
    """True for None and NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _lower_is_better(metric: str) -> bool:
    return any(marker in metric for marker in LOWER_IS_BETTER)


def _fmt(value: Any, metric: str = "") -> str:
    """A metric value: 3 decimals, 1 for ranks, "–" when missing."""
    if _missing(value):
        return DASH
    return f"{float(value):.1f}" if "rank" in metric else f"{float(value):.3f}"


def _fmt_plain(value: Any) -> str:
    """A setup value, weight or amount: numbers compactly, anything else as text."""
    if isinstance(value, float):
        return DASH if math.isnan(value) else f"{value:.6g}"
    return _cell(value)


def _cell(text: Any) -> str:
    """Text made safe for one Markdown table cell (or list item).

    Backslashes and pipes are escaped so the row keeps its cells, "<" so no HTML is
    interpreted, and line breaks become <br>.
    """
    text = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
    return re.sub(r"\r\n|\r|\n", "<br>", text)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1
           ) -> list[str]:
    """Markdown table lines; columns from ``numeric_from`` on are right-aligned."""
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _best(values: Sequence[Any], metric: str) -> set[int]:
    """Indices of the best values (ties included); none unless 2+ values are present."""
    present = [(i, float(v)) for i, v in enumerate(values) if not _missing(v)]
    if len(present) < 2:
        return set()
    pick = min if _lower_is_better(metric) else max
    best = pick(v for _, v in present)
    return {i for i, v in present if v == best}


def _metric_cells(metric: str, values: Sequence[Any]) -> list[str]:
    """The formatted values of one metric row, the best in bold."""
    best = _best(values, metric)
    cells = [_fmt(v, metric) for v in values]
    return [f"**{c}**" if i in best else c for i, c in enumerate(cells)]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "x"


def _floats(values: Sequence[Any]) -> list[float]:
    """Numbers for plotting: missing values become NaN."""
    return [math.nan if _missing(v) else float(v) for v in values]


def _ordered_keys(mappings: Sequence[Mapping], skip: Sequence[str] = ()) -> list[str]:
    """The union of the mappings' keys, in first-appearance order."""
    keys: dict[str, None] = {}
    for mapping in mappings:
        keys.update((k, None) for k in mapping if k not in skip)
    return list(keys)


# ---------------------------------------------------------------------------- figures


def _colours(variants: Sequence[str]) -> dict[str, Any]:
    """One fixed colour per variant, by its position."""
    cmap = plt.get_cmap("tab10")
    return {v: cmap(i % 10) for i, v in enumerate(variants)}


def _save(fig, path: str) -> None:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _plot_task(task: str, data: Mapping, variants: Sequence[str], metrics: Sequence[str],
               path: str) -> None:
    """Grouped bars of a task: one panel for higher-is-better metrics, one per lower one."""
    higher = [m for m in metrics if not _lower_is_better(m)]
    lower = [m for m in metrics if _lower_is_better(m)]
    groups = ([higher] if higher else []) + [[m] for m in lower]
    present = [v for v in variants if v in data]
    colours = _colours(variants)
    fig, axes = plt.subplots(1, len(groups), figsize=(10, 4), squeeze=False,
                             gridspec_kw={"width_ratios": [len(g) for g in groups]})
    width = 0.8 / max(len(present), 1)
    for ax, group in zip(axes[0], groups):
        for j, variant in enumerate(present):
            heights = _floats([data[variant].get(m) for m in group])
            xs = [i + (j - (len(present) - 1) / 2) * width for i in range(len(group))]
            ax.bar(xs, heights, width, label=variant, color=colours[variant])
        ax.set_xticks(range(len(group)), group, rotation=30, ha="right", fontsize=8)
        ax.set_title("lower is better" if group[0] in lower else "higher is better",
                     fontsize=9)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(task)
    fig.tight_layout()
    _save(fig, path)


def _plot_curves(xs: Sequence[float], metrics: Mapping[str, Sequence[Any]], xlabel: str,
                 title: str, path: str) -> None:
    """One line per metric against xs."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for metric, values in metrics.items():
        ax.plot(_floats(xs), _floats(values), marker="o", label=metric)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def _short(text: str, width: int = 25) -> str:
    """Text cut to MAP_TEXT_CHARS characters and wrapped for a plot label."""
    text = " ".join(str(text).split())
    if len(text) > MAP_TEXT_CHARS:
        text = text[:MAP_TEXT_CHARS - 1].rstrip() + "…"
    return textwrap.fill(text, width)


def _plot_map(space: Mapping, path: str) -> None:
    """All movies (train grey, held-out coloured) with numbered, annotated points."""
    xs, ys = _floats(space["x"]), _floats(space["y"])
    held = list(space.get("held_out") or [False] * len(xs))
    fig, ax = plt.subplots(figsize=(9, 7))
    for flag, colour, label, size in ((False, "0.7", "train", 6), (True, "tab:orange",
                                                                   "held out", 14)):
        pts = [(x, y) for x, y, h in zip(xs, ys, held) if bool(h) == flag]
        if pts:
            ax.scatter(*zip(*pts), s=size, c=colour, label=label, linewidths=0)
    styles = {"held_out": ("*", "tab:red"), "interpolation": ("D", "tab:blue")}
    for i, note in enumerate(space.get("annotations") or [], start=1):
        marker, colour = styles.get(note.get("kind"), ("o", "black"))
        ax.scatter([note["x"]], [note["y"]], marker=marker, c=[colour], s=40,
                   edgecolors="black", linewidths=0.5, label=str(note.get("kind")))
        ax.annotate(f"{i}: {_short(note.get('text', ''))}", (note["x"], note["y"]),
                    xytext=(5, 5), textcoords="offset points", fontsize=7)
    ax.set_title("Movie embedding space (2-D projection)")
    handles, labels = ax.get_legend_handles_labels()
    by_label = dict(zip(labels, handles))  # one legend entry per annotation kind
    ax.legend(by_label.values(), by_label.keys(), fontsize=8)
    fig.tight_layout()
    _save(fig, path)


# ---------------------------------------------------------------------------- sections


def _header(results: Mapping) -> list[str]:
    """Title, creation date, setup table and variant notes."""
    lines = [f"# {_cell(results.get('title', 'Evaluation report'))}", ""]
    if "created" in results:
        lines += [f"Created: {_cell(results['created'])}", ""]
    if results.get("setup"):
        rows = [[_cell(k), _fmt_plain(v)] for k, v in results["setup"].items()]
        lines += ["## Setup", ""] + _table(["setting", "value"], rows, numeric_from=2) + [""]
    notes = results.get("variant_notes")
    if notes:
        lines += ["## Variants", ""]
        for variant in _ordered_keys([dict.fromkeys(results["variants"]), notes]):
            if variant in notes:
                lines.append(f"- **{_cell(variant)}**: {_cell(notes[variant])}")
        lines.append("")
    return lines


def _mean_over(per_task: Mapping, variant: str, pairs: Sequence[tuple[str, str]]
               ) -> float | None:
    """A variant's mean of the (task, metric) values it has; None if it has none."""
    values = [per_task[t].get(variant, {}).get(m) for t, m in pairs]
    values = [float(v) for v in values if not _missing(v)]
    return sum(values) / len(values) if values else None


def _summary(per_task: Mapping, variants: Sequence[str]) -> list[str]:
    """Means over tasks of the metrics shared by several tasks, and of exact-fact accuracies."""
    task_metrics = {t: _ordered_keys(list(d.values()), skip=("n",)) for t, d in per_task.items()}
    groups = []  # (row label, metric deciding the direction, (task, metric) pairs)
    for metric in _ordered_keys(list(task_metrics.values())):
        pairs = [(t, metric) for t, ms in task_metrics.items() if metric in ms]
        if len(pairs) >= 2:
            groups.append((f"{_cell(metric)} (mean of {len(pairs)} tasks)", metric, pairs))
    accuracy = [(t, m) for t, ms in task_metrics.items() for m in ms
                if ACCURACY_MARKER in m and not m.startswith(CONSISTENCY_PREFIXES)]
    if accuracy:
        groups.append((f"exact-fact accuracy (mean of {len(accuracy)})", ACCURACY_MARKER,
                       accuracy))
    if not groups:
        return []
    rows = [[label] + _metric_cells(metric, [_mean_over(per_task, v, pairs) for v in variants])
            for label, metric, pairs in groups]
    return (["## Summary", ""] + _table(["metric"] + [_cell(v) for v in variants], rows)
            + ["", "Each mean is over the tasks where that variant has the metric.", ""])


def _blind_metrics(per_task: Mapping, variants: Sequence[str], ceiling: str = "reference",
                   floor: str = "untrained") -> list[str]:
    """A note naming the metrics on which the ``ceiling`` variant (the true texts) does not
    beat the ``floor`` (the untrained model): on this data they cannot tell variants apart."""
    if ceiling not in variants or floor not in variants:
        return []
    blind = []
    for task, data in per_task.items():
        top, bottom = data.get(ceiling, {}), data.get(floor, {})
        for metric in _ordered_keys([top, bottom], skip=("n",)):
            a, b = top.get(metric), bottom.get(metric)
            if _missing(a) or _missing(b):
                continue
            beaten = float(a) < float(b) if _lower_is_better(metric) else float(a) > float(b)
            if not beaten:
                blind.append(f"{_cell(task)}: {_cell(metric)}")
    if not blind:
        return [f"Every metric ranks {ceiling} above {floor}.", ""]
    return [f"Metrics on which {ceiling} does not beat {floor} (they cannot tell variants "
            f"apart on these examples): " + "; ".join(blind) + ".", ""]


def _goals(goals: Sequence[Mapping]) -> list[str]:
    """The quality bar of the run: each goal with its value, target and whether it is met."""
    def value(v: Any) -> str:
        if isinstance(v, (list, tuple)):
            return ", ".join(_fmt(x) for x in v)
        return _fmt(v)

    verdict = {True: "yes", False: "**no**", None: DASH}
    rows = [[_cell(g["name"]), value(g["value"]), _cell(g["target"]), verdict[g["met"]]]
            for g in goals]
    return ["## Goals", ""] + _table(["goal", "value", "target", "met"], rows) + [""]


def _vector_use(stages: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Each stage's held-out loss beside the loss when the examples of a batch swap
    vectors (the trainer's end-of-stage evaluation)."""
    rows = [[_cell(stage), _fmt(m["loss"]), _fmt(m["loss"] + m["vector_gain"]),
             _fmt(m["vector_gain"])] for stage, m in stages.items()]
    return (["## What the model takes from its vectors", "",
             "Held-out loss (nats per target token) at the end of each stage, and with the "
             "examples of each batch given each other's vectors. A model that reads its "
             "vectors loses by the swap; a gain near 0 means the answers do not depend on "
             "the vector at all.", ""]
            + _table(["stage", "loss", "loss, vectors swapped", "vector gain"], rows) + [""])


def _ratio(value: Any, ceiling: Any) -> str:
    """value ÷ ceiling with 2 decimals; "–" where either is missing or the ceiling is 0."""
    if _missing(value) or _missing(ceiling) or float(ceiling) == 0:
        return DASH
    return f"{float(value) / float(ceiling):.2f}"


def _task(task: str, data: Mapping, variants: Sequence[str], figure: str, fig_dir: str,
          ceiling: Mapping | None = None) -> list[str]:
    """One task's metric table (rows: metrics, columns: variants, best in bold) and figure;
    with a ``ceiling`` (see :func:`write_report`), its columns and a ratio column after."""
    per_variant = [data.get(v, {}) for v in variants]
    metrics = _ordered_keys(per_variant, skip=("n",))
    rows = [[_cell(m)] + _metric_cells(m, [d.get(m) for d in per_variant]) for m in metrics]
    rows.append(["n"] + [DASH if _missing(d.get("n")) else str(int(d["n"]))
                         for d in per_variant])
    header = ["metric"] + [_cell(v) for v in variants]
    if ceiling:
        columns = ceiling["columns"]
        of, to = ceiling["ratio_of"], ceiling["ratio_to"]
        header += [_cell(label) for label in columns] + [_cell(f"{of} ÷ {to}")]
        for metric, row in zip(metrics, rows):
            row += [_fmt(c.get(metric), metric) for c in columns.values()]
            row.append(_ratio(data.get(of, {}).get(metric), columns.get(to, {}).get(metric)))
        rows[-1] += [DASH] * (len(columns) + 1)
    lines = [f"### {_cell(task)}", ""]
    lines += _table(header, rows) + [""]
    if metrics:
        _plot_task(task, data, variants, metrics, os.path.join(fig_dir, figure))
        lines += [f"![{_cell(task)}](figures/{figure})", ""]
    return lines


def _samples(samples: Sequence[Mapping], tasks: Sequence[str], variants: Sequence[str]
             ) -> list[str]:
    """Every sample of every task, in the order given: prompt, reference and each
    generation. How many per task is the caller's choice (MovieLens: eval.samples_per_task)."""
    by_task: dict[str, list[Mapping]] = {}
    for sample in samples:
        by_task.setdefault(sample.get("task", ""), []).append(sample)
    lines = ["## Samples", ""]
    for task in _ordered_keys([dict.fromkeys(tasks), by_task]):
        if task not in by_task:
            continue
        lines += [f"### {_cell(task)}", ""]
        for i, sample in enumerate(by_task[task], start=1):
            generated = sample.get("generated", {})
            rows = [["prompt", _cell(sample.get("prompt", ""))],
                    ["reference", _cell(sample.get("reference", ""))]]
            rows += [[f"**{_cell(v)}**", _cell(generated[v])]
                     for v in _ordered_keys([dict.fromkeys(variants), generated])
                     if v in generated]
            lines += [f"**Example {i}** ({_cell(sample.get('entities', ''))})", ""]
            lines += _table(["", "text"], rows, numeric_from=2) + [""]
    return lines


def _curve_section(xs: Sequence[Any], x_name: str, section: Mapping) -> list[str]:
    """The metric-per-x table and the trend table shared by interpolation and CAV."""
    metrics = section.get("metrics", {})
    rows = [[_fmt_plain(x)] + [_fmt(values[i] if i < len(values) else None, m)
                               for m, values in metrics.items()]
            for i, x in enumerate(xs)]
    lines = _table([x_name] + [_cell(m) for m in metrics], rows) + [""]
    if section.get("trend"):
        trend = [[_cell(k), _fmt(v, k)] for k, v in section["trend"].items()]
        lines += ["Trend:", ""] + _table(["trend", "value"], trend) + [""]
    return lines


def _variant_line(variant: str) -> list[str]:
    """The line naming the variant a section used, if named."""
    return [f"Variant: {_cell(variant)}.", ""] if variant else []


def _interpolation(section: Mapping, fig_dir: str) -> list[str]:
    """Metrics against the interpolation weight, trends, and generated texts."""
    weights = section.get("weights", [])
    variant = section.get("variant", "")
    lines = ["## Interpolation", ""] + _variant_line(variant)
    lines += _curve_section(weights, "weight", section)
    if section.get("metrics"):
        _plot_curves(weights, section["metrics"], "weight",
                     f"Interpolation ({variant})", os.path.join(fig_dir, "interpolation.png"))
        lines += ["![interpolation](figures/interpolation.png)", ""]
    rows = [[_cell(s.get("a", "")), _cell(s.get("b", "")), _fmt_plain(s.get("weight")),
             _cell(s.get("text", ""))] for s in section.get("samples", [])]
    if rows:
        lines += _table(["a", "b", "weight", "text"], rows, numeric_from=4) + [""]
    return lines


def _cav(cav: Mapping, fig_dir: str) -> list[str]:
    """Per concept: metrics against the CAV amount, trends, and generated texts."""
    lines = ["## Concept activation vectors", ""]
    for i, (concept, section) in enumerate(cav.items()):
        amounts = section.get("amounts", [])
        variant = section.get("variant", "")
        lines += [f"### {_cell(concept)}", ""] + _variant_line(variant)
        lines += _curve_section(amounts, "amount", section)
        if section.get("metrics"):
            figure = f"cav_{i:02d}_{_slug(concept)}.png"
            _plot_curves(amounts, section["metrics"], "amount",
                         f"CAV: {concept} ({variant})", os.path.join(fig_dir, figure))
            lines += [f"![{_cell(concept)}](figures/{figure})", ""]
        rows = [[_cell(s.get("user", "")), _fmt_plain(s.get("amount")),
                 _cell(s.get("text", ""))] for s in section.get("samples", [])]
        if rows:
            lines += _table(["user", "amount", "text"], rows, numeric_from=3) + [""]
    return lines


def _map(space: Mapping, fig_dir: str) -> list[str]:
    """The embedding map figure and a table of its numbered annotations."""
    held = sum(bool(h) for h in space.get("held_out") or [])
    _plot_map(space, os.path.join(fig_dir, "map.png"))
    lines = ["## Embedding map", "",
             f"{len(space['x'])} movies, {held} held out (coloured).", "",
             "![embedding map](figures/map.png)", ""]
    rows = [[str(i), _cell(a.get("kind", "")), _cell(a.get("text", ""))]
            for i, a in enumerate(space.get("annotations") or [], start=1)]
    if rows:
        lines += _table(["#", "kind", "text"], rows, numeric_from=3) + [""]
    return lines


def write_report(results: Mapping, out_dir: str) -> str:
    """Writes out_dir/report.md and its figures (out_dir/figures/*.png).

    Returns report.md's path. ``results`` needs ``variants`` and ``per_task``; the other
    sections (title, created, setup, variant_notes, goals, vector_use, samples,
    interpolation, cav, map, ceilings) are optional. ``vector_use`` maps a stage to its
    end-of-stage ``loss`` and ``vector_gain``. ``goals`` is a list of
    ``{"name", "value", "target", "met"}`` (``met``: True, False or None for not judged).
    ``ceilings[task]`` adds columns to a task's table:
    ``{"columns": {label: {metric: value}}, "ratio_of": variant, "ratio_to": label}``,
    the last shown as one more column, ``variant``'s value ÷ the column ``label``'s.
    """
    fig_dir = os.path.join(out_dir, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    variants = list(results["variants"])
    per_task = results["per_task"]
    lines = _header(results) + _summary(per_task, variants)
    lines += _blind_metrics(per_task, variants)
    if results.get("goals"):
        lines += _goals(results["goals"])
    if results.get("vector_use"):
        lines += _vector_use(results["vector_use"])
    lines += ["## Tasks", ""]
    ceilings = results.get("ceilings") or {}
    if ceilings:
        lines += [CEILINGS_NOTE, ""]
    for i, (task, data) in enumerate(per_task.items()):
        lines += _task(task, data, variants, f"task_{i:02d}_{_slug(task)}.png", fig_dir,
                       ceilings.get(task))
    if results.get("interpolation"):
        lines += _interpolation(results["interpolation"], fig_dir)
    if results.get("cav"):
        lines += _cav(results["cav"], fig_dir)
    if results.get("map"):
        lines += _map(results["map"], fig_dir)
    if results.get("samples"):
        lines += _samples(results["samples"], list(per_task), variants)
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines).rstrip("\n") + "\n")
    return path
