"""The explorer page (launch.explore) on a describe run, your own embeddings: the tiny
random backbone trained 2 + 2 steps on 40 synthetic objects, driven in headless Chromium."""

import subprocess
import sys

import pytest

from helpers import ROOT, tiny_describe_run_flags
from page_driver import (START_SECONDS, Server, click_map_point, field_value, map_points,
                         needs_browser, status, tab, text, wait)

from elc.projects.describe.example import build_example

pytestmark = [pytest.mark.slow, needs_browser]

_ENTITIES = 40


def _launch(module, *flags):
    result = subprocess.run([sys.executable, "-m", module, *flags], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def describe_run(tmp_path_factory):
    """(flags, workdir) of a describe run trained on 40 synthetic objects."""
    root = tmp_path_factory.mktemp("describe_page")
    table, texts = build_example(str(root / "example"), "synthetic", count=_ENTITIES)
    flags = tiny_describe_run_flags(root / "data")
    _launch("launch.prepare_data", *flags, f"--config.prepare.table={table}",
            f"--config.prepare.texts={texts}")
    _launch("launch.train", *flags, f"--workdir={root / 'run'}")
    return flags, root / "run"


def test_page_on_a_describe_run_maps_clicks_and_answers(describe_run, browser, tmp_path):
    from selenium.webdriver.common.by import By
    flags, workdir = describe_run
    # Sampled answers: the two-step model's greedy ones may be empty.
    server = Server([*flags, "--config.sample.max_new_tokens=12",
                     "--config.sample.temperature=1.0", f"--workdir={workdir}"],
                    tmp_path / "explore.log")
    try:
        browser.get(server.wait_until_serving())
        assert len(wait(browser, map_points, "the map", 60)) == _ENTITIES
        wait(browser, lambda d: "Stages loaded: adapter, full." in status(d),
             "the model to load", START_SECONDS)
        # The map is coloured by the split, and the describe task is the one to ask.
        legend = browser.find_element(By.CSS_SELECTOR, "#map .map-legend").text
        assert legend.startswith("split:") and "held out (4)" in legend, legend
        assert field_value(browser, "task") == "describe"
        # A click on an object asks the ELM to describe it; the answer is scored against
        # the object's own description and the catalogue of descriptions.
        label = click_map_point(browser, 7)
        entity = wait(browser, lambda d: field_value(d, "entity"), "the clicked entity")
        assert entity.startswith("obj") and label.startswith(entity + " (split: "), (entity,
                                                                                    label)
        wait(browser, lambda d: server.asked(f"describe about {entity}:"), "an answer about it")
        assert wait(browser, lambda d: text(d, "answer").strip(), "the answer on the page")
        details = browser.find_element(By.CSS_SELECTOR, "#details").text
        assert "semantic consistency" in details and "nearest entities" in details, details
        # A describe run has no concept directions: the Steer tab says so.
        tab(browser, "Steer")
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "This run has no concept directions to steer along." in body
    finally:
        server.stop()
