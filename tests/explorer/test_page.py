"""The explorer page (launch.explore) in a real browser: Debian's headless Chromium driven
by Selenium, against the server started on the tiny MovieLens run."""

import time

import pytest

from helpers import needs_recbole, prepare_flags, tiny_movielens_run_flags
from page_driver import (START_SECONDS, Server, choose, click_map_point, field_value, map_labels,
                         map_points, needs_browser, selected_tab, slide, status, tab, text,
                         toast, wait)

pytestmark = [pytest.mark.slow, needs_recbole, needs_browser]


def _explore_flags(prepared_dir, workdir):
    # The tiny run's model flags. Its two-step model's greedy answers are often empty:
    # sampled ones are not, and moving the point changes them. Long answers (a random
    # model seldom stops early) keep each request longer than the slider test's steps.
    return [*prepare_flags(prepared_dir), *tiny_movielens_run_flags(),
            "--config.sample.max_new_tokens=160", "--config.sample.temperature=1.0",
            f"--workdir={workdir}"]


def test_page_answers_follows_the_slider_and_reports_bad_input(prepared, tiny_movielens_run,
                                                               browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    workdir, _ = tiny_movielens_run
    server = Server(_explore_flags(prepared[0], workdir), tmp_path / "explore.log")
    try:
        browser.get(server.wait_until_serving())
        points = wait(browser, map_points, "the map", 60)
        assert len(points) > 100, len(points)  # every movie of the first space
        # The model loads after the page is up; the status line shows its progress.
        wait(browser, lambda d: "Stages loaded: adapter, full." in status(d),
              "the model to load", START_SECONDS)
        # Describe: pick an entity by name; an answer and its consistency appear.
        choose(browser, "entity", "Toy Story (1995)")
        answer = wait(browser, lambda d: text(d, "answer").strip(), "an answer")
        details = browser.find_element(By.CSS_SELECTOR, "#details").text
        assert "semantic consistency" in details and "nearest entities" in details, details
        # Interpolate: two movies, then the slider from the middle to b.
        tab(browser, "Interpolate")
        choose(browser, "entity_a", "Toy Story (1995)")
        choose(browser, "entity_b", "Scream (1996)")
        middle = wait(browser, lambda d: text(d, "mixed_answer").strip(),
                       "the answer about the point halfway")
        # Ten steps of the slider (0.5 -> 1), 5 ms apart, far quicker than an answer:
        # the page keeps at most one request waiting, the latest, so the model answers
        # the first step and the last (with trigger_mode="multiple" it answers all ten).
        asked_before = len(server.asked(" -> "))
        slide(browser, "weight", [round(0.5 + 0.05 * step, 2) for step in range(1, 11)], 5)
        wait(browser, lambda d: server.asked("Scream (1996) at 1:"), "the answer at b")
        moved = wait(browser, lambda d: (text(d, "mixed_answer").strip() != middle
                                         and text(d, "mixed_answer").strip()),
                     "the answer to change as the slider moves to b")
        assert moved != middle
        time.sleep(1)  # nothing more should come
        steps = [line.split(" at ")[-1].split(":")[0] for line in server.asked(" -> ")]
        assert 2 <= len(steps) - asked_before <= 4 and steps[-1] == "1", steps[asked_before:]
        # Clicking a point on the map asks about it in the Describe tab.
        label = click_map_point(browser, 5)
        entity = wait(browser, lambda d: field_value(d, "entity") not in ("", "Toy Story (1995)")
                      and field_value(d, "entity"), "the clicked entity in the Describe tab")
        assert label.startswith(entity + " ("), (label, entity)
        assert selected_tab(browser) == "Describe"
        wait(browser, lambda d: server.asked(f"about {entity}:"), "an answer about it")
        wait(browser, lambda d: entity in map_labels(d, ".map-mark"), "its mark on the map")
        browser.save_screenshot(str(tmp_path / "explorer.png"))
        assert (tmp_path / "explorer.png").stat().st_size > 10_000
        # Bad input: an unknown name gets a message on the page, and the page lives on.
        tab(browser, "Describe")
        field = browser.find_element(By.CSS_SELECTOR, "#entity input")
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys("No Such Movie", Keys.ENTER)
        message = wait(browser, toast, "an error message")
        assert "'No Such Movie' is not an entity" in message, message
        assert answer  # the earlier answer was non-empty
        choose(browser, "entity", "Scream (1996)")
        wait(browser, lambda d: text(d, "answer").strip(), "an answer after the error")
        # A task the run does not have (cpu_quick trains no movie_reception).
        field = browser.find_element(By.CSS_SELECTOR, "#task input")
        field.click()
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys("movie_reception", Keys.ENTER)
        wait(browser, lambda d: "'movie_reception' is not a task of this run" in toast(d),
              "an error message naming the task")
        # Steer, with the map on the users: the user and the steered point are marked.
        choose(browser, "space", "user_behavioural")
        user = wait(browser, lambda d: [label for label in map_labels(d)
                                        if label.startswith("user ")],
                    "the map of the users")[0].rsplit(" (", 1)[0]  # less its colouring fact
        tab(browser, "Steer")
        choose(browser, "steered", user)
        wait(browser, lambda d: text(d, "steer_answer").strip(), "the answer about the user")
        slide(browser, "amount", [1.0], 5)
        steered = f"{user} + 1 x {field_value(browser, 'direction')}"
        marks = wait(browser, lambda d: steered in (labels := map_labels(d, ".map-mark"))
                     and labels, "the steered point's mark")
        assert sorted(marks) == sorted([user, steered]), marks
    finally:
        server.stop()


def test_page_without_a_checkpoint_names_the_training_command(prepared, browser, tmp_path):
    server = Server(_explore_flags(prepared[0], tmp_path / "untrained"), tmp_path / "explore.log")
    try:
        browser.get(server.wait_until_serving())
        line = wait(browser, lambda d: "No model to ask" in status(d) and status(d),
                    "the status line to give up on the model", START_SECONDS)
        assert "python -m launch.train" in line, line
        choose(browser, "entity", "Toy Story (1995)")
        message = wait(browser, toast, "an error message")
        assert "python -m launch.train" in message, message
    finally:
        server.stop()
