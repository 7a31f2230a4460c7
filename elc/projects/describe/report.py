"""``report.md`` of a describe evaluation: the metrics per variant and some answers."""

from __future__ import annotations

import os
from typing import Any

from elc.evaluation.answers import write_atomically

_COLUMNS = (("sc_cosine", "SC cosine", 3), ("rank_mean", "rank (mean)", 1),
            ("rank_median", "rank (median)", 1), ("recall@1", "recall@1", 3),
            ("recall@10", "recall@10", 3), ("chrf", "chrF", 1))


def _cell(value, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _quote(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_report(results: dict[str, Any]) -> str:
    """The Markdown text of the report of ``results`` (see evaluation.score_answers)."""
    lines = ["# Describe ELM: held-out entities", "",
             f"{results['entities_asked']} held-out entities asked (of {results['held_out']}), "
             f"ranked among {results['catalogue']} entities by the sentence encoder's cosine "
             "between the answer and each entity's description. chrF is 0..100 (chrF2, "
             "character n-grams up to 6). `reference` is the true description.", "",
             "| variant | " + " | ".join(title for _, title, _ in _COLUMNS) + " |",
             "| --- |" + " ---: |" * len(_COLUMNS)]
    for variant in results["variants"]:
        row = results["metrics"][variant]
        lines.append(f"| {variant} | " + " | ".join(_cell(row.get(key), digits)
                                                     for key, _, digits in _COLUMNS) + " |")
    stages = ", ".join(f"{s['name']} {s['steps']} steps" for s in results["stages"])
    lines += ["", f"Stages: {stages}. Generation: {results['generation_seconds']} s on "
              f"{results['devices']}.", "", "## Samples", ""]
    for sample in results["samples"]:
        lines += [f"**{sample['entity']}**: {_quote(sample['prompt'])}", ""]
        for variant, found in sample["answers"].items():
            lines.append(f"- `{variant}` (cosine {found['sc_cosine']:.2f}, rank "
                         f"{found['rank']:.0f}, chrF {found['chrf']:.1f}): "
                         f"{_quote(found['answer'])}")
        lines.append("")
    return "\n".join(lines)


def write_report(results: dict[str, Any], out_dir: str) -> str:
    """Writes ``report.md`` into ``out_dir``; returns its path."""
    path = os.path.join(out_dir, "report.md")
    write_atomically(path, render_report(results))
    return path
