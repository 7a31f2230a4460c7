"""The evaluation report: exact numbers in the right cells, bold best, skipped sections, PNGs."""

import math
import os
import re

import pytest

from elc.evaluation.report import write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VARIANTS = ["untrained", "stage1", "stage2", "text_only"]
PIPE_TEXT = "left | right\nsecond line \\| tail"


def make_results():
    """A hand-made results dict with every section."""
    return {
        "title": "ELM on MovieLens",
        "created": "2025-01-02",
        "setup": {"backbone": "gemma3-270m", "steps": 1200, "seconds": 345.5},
        "variants": VARIANTS,
        "variant_notes": {"untrained": "adapter at init", "stage2": "adapter and LLM"},
        "per_task": {
            "movie_title": {
                "untrained": {"title_accuracy": 0.1234, "rating_error": 1.5, "sc_cosine": 0.2,
                              "sc_rank": 50.25, "n": 40},
                "stage1": {"title_accuracy": 0.5, "rating_error": 0.9, "sc_cosine": 0.4,
                           "sc_rank": 12.34, "n": 40},
                "stage2": {"title_accuracy": 0.75, "rating_error": 0.85, "sc_cosine": 0.6,
                           "sc_rank": 8.06, "n": 40},
                "text_only": {"title_accuracy": math.nan, "rating_error": 1.1,
                              "sc_cosine": None, "sc_rank": 20.0, "n": 38},
            },
            "user_profile": {
                "untrained": {"genre_accuracy": 0.3, "sc_cosine": 0.1, "n": 20},
                "stage1": {"genre_accuracy": 0.5, "sc_cosine": 0.2, "n": 20},
                "stage2": {"genre_accuracy": 0.45, "sc_cosine": 0.9, "n": 20},
            },
        },
        "samples": [
            {"task": "movie_title", "entities": "Toy Story (1995)", "prompt": "Name <movie>.",
             "reference": "Toy Story", "generated": {"untrained": PIPE_TEXT,
                                                     "stage2": "Toy Story"}},
        ] + [{"task": "user_profile", "entities": f"user {i}", "prompt": "Describe.",
              "reference": f"ref {i}", "generated": {"stage1": f"gen {i}"}} for i in range(5)],
        "interpolation": {
            "weights": [0, 0.25, 0.5, 0.75, 1.0], "variant": "stage2",
            "metrics": {"cosine_to_a": [0.9, 0.7, 0.5, 0.3, 0.1],
                        "cosine_to_b": [0.1, 0.3, 0.4567, 0.7, math.nan]},
            "trend": {"spearman_to_b": 0.987},
            "samples": [{"a": "Alien", "b": "Heat", "weight": 0.5, "text": "a tense thriller"}],
        },
        "cav": {
            "funny": {"amounts": [0.0, 1.0, 2.0], "variant": "stage1",
                      "metrics": {"concept_score": [0.11, 0.22, 0.333]},
                      "trend": {"slope": 0.1115},
                      "samples": [{"user": "u7", "amount": 2.0, "text": "likes comedies"}]},
            "dark/grim": {"amounts": [0.0, 1.0], "variant": "stage1",
                          "metrics": {"concept_score": [0.5, 0.25]}},
        },
        "map": {
            "x": [0.0, 1.0, 2.0, 3.0], "y": [0.0, 1.0, 0.5, 2.0],
            "held_out": [False, True, False, True], "labels": ["A", "B", "C", "D"],
            "annotations": [{"x": 1.0, "y": 1.0, "text": "x" * 200, "kind": "held_out"},
                            {"x": 1.5, "y": 1.5, "text": "mix", "kind": "interpolation"}],
        },
    }


def split_row(line):
    """The cells of a Markdown table row, splitting at unescaped pipes as GitHub does."""
    body = line.strip()
    assert body.startswith("|") and body.endswith("|"), line
    cells, cell, i = [], "", 0
    body = body[1:-1]
    while i < len(body):
        if body[i] == "\\":
            cell += body[i:i + 2]
            i += 2
            continue
        if body[i] == "|":
            cells.append(cell.strip())
            cell = ""
        else:
            cell += body[i]
        i += 1
    return cells + [cell.strip()]


def section(md, heading):
    """The lines from a heading to the next heading of the same or a higher level."""
    lines = md.splitlines()
    start = lines.index(heading)
    level = len(heading) - len(heading.lstrip("#"))
    end = next((i for i in range(start + 1, len(lines))
                if re.match(rf"#{{1,{level}}} ", lines[i])), len(lines))
    return lines[start + 1:end]


def rows(md, heading, table=0):
    """First cell -> other cells of the table-th table in a section."""
    tables, current = [], []
    for line in section(md, heading) + [""]:
        if line.startswith("|"):
            current.append(split_row(line))
        elif current:
            tables.append(current)
            current = []
    return {r[0]: r[1:] for r in tables[table][2:]}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    path = write_report(make_results(), str(out))
    with open(path, encoding="utf-8") as f:
        return str(out), path, f.read()


def test_returns_report_path(report):
    out, path, md = report
    assert path == os.path.join(out, "report.md") and os.path.isfile(path)
    assert md.startswith("# ELM on MovieLens\n") and "Created: 2025-01-02" in md
    setup = rows(md, "## Setup")
    assert setup == {"backbone": ["gemma3-270m"], "steps": ["1200"], "seconds": ["345.5"]}
    assert "- **stage2**: adapter and LLM" in md


def test_task_table_numbers_and_bold(report):
    table = rows(report[2], "### movie_title")
    # Columns follow VARIANTS; higher is better for accuracy and cosine.
    assert table["title_accuracy"] == ["0.123", "0.500", "**0.750**", "–"]
    assert table["sc_cosine"] == ["0.200", "0.400", "**0.600**", "–"]
    # Lower is better for errors and ranks; ranks have 1 decimal.
    assert table["rating_error"] == ["1.500", "0.900", "**0.850**", "1.100"]
    assert table["sc_rank"] == ["50.2", "12.3", "**8.1**", "20.0"]
    assert list(table)[-1] == "n" and table["n"] == ["40", "40", "40", "38"]
    # A variant without the task has a column of dashes.
    user = rows(report[2], "### user_profile")
    assert user["genre_accuracy"] == ["0.300", "**0.500**", "0.450", "–"]
    assert user["n"][-1] == "–"


def test_ceiling_columns_follow_the_variants(tmp_path):
    results = make_results()
    results["ceilings"] = {"user_profile": {
        "columns": {"probe (users)": {"genre_accuracy": 0.25}, "commonest": {"genre_accuracy": 0.2}},
        "ratio_of": "stage2", "ratio_to": "probe (users)"}}
    with open(write_report(results, str(tmp_path)), encoding="utf-8") as f:
        md = f.read()
    user = rows(md, "### user_profile")
    # Bold stays among the variants; 0.45 / 0.25 = 1.8.
    assert user["genre_accuracy"] == ["0.300", "**0.500**", "0.450", "–", "0.250", "0.200", "1.80"]
    assert user["sc_cosine"][-3:] == ["–", "–", "–"] and user["n"][-3:] == ["–", "–", "–"]
    header = next(line for line in section(md, "### user_profile") if line.startswith("| metric"))
    assert split_row(header)[-3:] == ["probe (users)", "commonest", "stage2 ÷ probe (users)"]
    assert len(rows(md, "### movie_title")["n"]) == len(VARIANTS)  # no ceiling, no columns


def test_summary_means(report):
    summary = rows(report[2], "## Summary")
    # sc_cosine: untrained (0.2+0.1)/2, stage1 (0.4+0.2)/2, stage2 (0.6+0.9)/2, text_only none.
    assert summary["sc_cosine (mean of 2 tasks)"] == ["0.150", "0.300", "**0.750**", "–"]
    # Accuracies: title_accuracy and genre_accuracy; text_only's NaN is skipped.
    assert summary["exact-fact accuracy (mean of 2)"] == ["0.212", "0.500", "**0.600**", "–"]
    assert not any(label.startswith("sc_rank") for label in summary)  # one task only


def test_sample_pipe_keeps_cells(report):
    movie, user = report[2].split("## Samples")[1].split("### user_profile")
    row = next(line for line in movie.splitlines() if line.startswith("| **untrained** |"))
    assert len(split_row(row)) == 2
    assert split_row(row)[1] == "left \\| right<br>second line \\\\\\| tail"
    assert "| reference | Toy Story |" in movie
    # Every sample given, in order: the evaluator chose how many (eval.samples_per_task).
    assert user.count("**Example") == 5 and user.index("gen 3") < user.index("gen 4")


def test_interpolation_and_cav_tables(report):
    md = report[2]
    interp = rows(md, "## Interpolation")
    assert interp["0.5"] == ["0.500", "0.457"] and interp["1"] == ["0.100", "–"]
    assert rows(md, "## Interpolation", table=1) == {"spearman_to_b": ["0.987"]}
    assert rows(md, "## Interpolation", table=2)["Alien"] == ["Heat", "0.5", "a tense thriller"]
    funny = rows(md, "### funny")
    assert funny["2"] == ["0.333"]
    assert rows(md, "### funny", table=1) == {"slope": ["0.112"]}
    assert rows(md, "### funny", table=2) == {"u7": ["2", "likes comedies"]}
    assert rows(md, "### dark/grim")["1"] == ["0.250"]


def test_every_figure_is_a_png(report):
    out, _, md = report
    figures = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", md)
    # Two tasks, interpolation, two CAV concepts, the map.
    assert len(figures) == len(set(figures)) == 6
    for figure in figures:
        with open(os.path.join(out, figure), "rb") as f:
            data = f.read()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, figure
    assert sorted(os.listdir(os.path.join(out, "figures"))) == sorted(
        os.path.basename(f) for f in figures)


def test_missing_sections_are_skipped(tmp_path):
    per_task = {"user_profile": make_results()["per_task"]["user_profile"]}
    minimal = {"variants": VARIANTS, "per_task": per_task}
    with open(write_report(minimal, str(tmp_path)), encoding="utf-8") as f:
        md = f.read()
    for heading in ("## Setup", "## Variants", "## Interpolation",
                    "## Concept activation vectors", "## Embedding map", "## Samples"):
        assert heading not in md
    assert rows(md, "### user_profile")["sc_cosine"] == ["0.100", "0.200", "**0.900**", "–"]
    assert os.listdir(tmp_path / "figures") == ["task_00_user_profile.png"]


def test_deterministic(report, tmp_path):
    with open(write_report(make_results(), str(tmp_path)), encoding="utf-8") as f:
        assert f.read() == report[2]


def test_metrics_the_reference_does_not_beat_are_named(tmp_path):
    per_task = {
        "a": {"untrained": {"acc": 0.2, "error": 3.0, "n": 4},
              "reference": {"acc": 0.9, "error": 1.0, "n": 4}},
        "b": {"untrained": {"acc": 0.0, "bc_rank": 400.0, "recall": 0.0},
              "reference": {"acc": 0.0, "bc_rank": 500.0, "recall": float("nan")}},
    }
    results = {"variants": ["untrained", "reference"], "per_task": per_task}
    with open(write_report(results, str(tmp_path)), encoding="utf-8") as f:
        md = f.read()
    # a: both better (error lower); b: a tie and a worse rank; a NaN is not judged.
    note = next(line for line in md.splitlines() if line.startswith("Metrics on which"))
    assert note.endswith("b: acc; b: bc_rank.")
    results["per_task"] = {"a": per_task["a"]}
    with open(write_report(results, str(tmp_path)), encoding="utf-8") as f:
        assert "Every metric ranks reference above untrained." in f.read()
