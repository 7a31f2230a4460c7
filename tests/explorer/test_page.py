"""The explorer page (launch.explore) in a real browser: Debian's headless Chromium driven
by Selenium, against the server started on the tiny MovieLens run."""

import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

from helpers import ROOT, needs_recbole, prepare_flags, tiny_movielens_run_flags

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# CI sets ELC_REQUIRE_BROWSER: there a missing browser fails the test instead of skipping it.
pytestmark = [pytest.mark.slow, needs_recbole, pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("ELC_REQUIRE_BROWSER"),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
           "chromium-driver)")]

_SERVING = re.compile(r"serving the explorer at (http://127\.0\.0\.1:\d+/)")
_START_SECONDS = 300
_ANSWER_SECONDS = 120


class Server:
    """launch.explore in a subprocess; ``url`` once it serves, its log in ``lines``."""

    def __init__(self, flags, log_path):
        self.lines: list[str] = []
        self.log_path = log_path
        self.process = subprocess.Popen(
            [sys.executable, "-m", "launch.explore", "--port=0", *flags], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.serving = threading.Event()
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)
            found = _SERVING.search(line)
            if found:
                self.url = found.group(1)
                self.serving.set()
        self.serving.set()  # the process ended: wait_until_serving reports it

    def wait_until_serving(self) -> str:
        self.serving.wait(_START_SECONDS)
        if not self.url:
            self.stop()
            pytest.fail(f"launch.explore did not serve within {_START_SECONDS}s:\n"
                        + "".join(self.lines[-40:]))
        return self.url

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log_path.write_text("".join(self.lines))


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or "chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER or "chromedriver"), options=options)
    yield driver
    driver.quit()


def _explore_flags(prepared_dir, workdir):
    # The tiny run's model flags. Its two-step model's greedy answers are often empty:
    # sampled ones are not, and moving the point changes them.
    return [*prepare_flags(prepared_dir), *tiny_movielens_run_flags(),
            "--config.sample.max_new_tokens=24", "--config.sample.temperature=1.0",
            f"--workdir={workdir}"]


def _wait(driver, condition, what, seconds=_ANSWER_SECONDS):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = condition(driver)
        if value:
            return value
        time.sleep(0.25)
    from selenium.webdriver.common.by import By
    page = driver.find_element(By.TAG_NAME, "body").text
    raise AssertionError(f"timed out after {seconds}s waiting for {what}; the page reads:\n"
                         f"{page[-1500:]}")


def _choose(driver, element_id, text):
    """Types ``text`` into dropdown ``element_id`` and clicks the matching option."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    field = driver.find_element(By.CSS_SELECTOR, f"#{element_id} input")
    field.click()
    field.send_keys(Keys.CONTROL, "a")  # replaces what the field holds
    field.send_keys(text)
    option = _wait(driver, lambda d: [
        o for o in d.find_elements(By.CSS_SELECTOR, f"#{element_id} li[role=option]")
        if o.get_attribute("aria-label") == text], f"option {text!r}", 20)
    option[0].click()


def _text(driver, element_id):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.CSS_SELECTOR, f"#{element_id} textarea").get_attribute("value")


def _tab(driver, name):
    from selenium.webdriver.common.by import By
    [tab] = [t for t in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if t.text == name]
    tab.click()


def _status(driver):
    from selenium.webdriver.common.by import By
    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "#status"))


def _toast(driver):
    from selenium.webdriver.common.by import By
    return " ".join(t.text for t in driver.find_elements(By.CSS_SELECTOR, ".toast-body"))


def test_page_answers_follows_the_slider_and_reports_bad_input(prepared, tiny_movielens_run,
                                                               browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    workdir, _ = tiny_movielens_run
    server = Server(_explore_flags(prepared[0], workdir), tmp_path / "explore.log")
    try:
        browser.get(server.wait_until_serving())
        _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#map canvas, #map svg"),
              "the map", 60)
        # The model loads after the page is up; the status line shows its progress.
        _wait(browser, lambda d: "Stages loaded: adapter, full." in _status(d),
              "the model to load", _START_SECONDS)
        # Describe: pick an entity by name; an answer and its consistency appear.
        _choose(browser, "entity", "Toy Story (1995)")
        answer = _wait(browser, lambda d: _text(d, "answer").strip(), "an answer")
        details = browser.find_element(By.CSS_SELECTOR, "#details").text
        assert "semantic consistency" in details and "nearest entities" in details, details
        # Interpolate: two movies, then the slider from the middle to b.
        _tab(browser, "Interpolate")
        _choose(browser, "entity_a", "Toy Story (1995)")
        _choose(browser, "entity_b", "Scream (1996)")
        middle = _wait(browser, lambda d: _text(d, "mixed_answer").strip(),
                       "the answer about the point halfway")
        browser.find_element(By.CSS_SELECTOR, "#weight input[type=range]").send_keys(Keys.END)
        moved = _wait(browser, lambda d: (_text(d, "mixed_answer").strip() != middle
                                          and _text(d, "mixed_answer").strip()),
                      "the answer to change as the slider moves to b")
        assert moved != middle
        browser.save_screenshot(str(tmp_path / "explorer.png"))
        assert (tmp_path / "explorer.png").stat().st_size > 10_000
        # Bad input: an unknown name gets a message on the page, and the page lives on.
        _tab(browser, "Describe")
        field = browser.find_element(By.CSS_SELECTOR, "#entity input")
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys("No Such Movie", Keys.ENTER)
        message = _wait(browser, _toast, "an error message")
        assert "'No Such Movie' is not an entity" in message, message
        assert answer  # the earlier answer was non-empty
        _choose(browser, "entity", "Scream (1996)")
        _wait(browser, lambda d: _text(d, "answer").strip(), "an answer after the error")
        # A task the run does not have (cpu_quick trains no movie_reception).
        field = browser.find_element(By.CSS_SELECTOR, "#task input")
        field.click()
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys("movie_reception", Keys.ENTER)
        _wait(browser, lambda d: "'movie_reception' is not a task of this run" in _toast(d),
              "an error message naming the task")
    finally:
        server.stop()


def test_page_without_a_checkpoint_names_the_training_command(prepared, browser, tmp_path):
    from selenium.webdriver.common.by import By
    server = Server(_explore_flags(prepared[0], tmp_path / "untrained"), tmp_path / "explore.log")
    try:
        browser.get(server.wait_until_serving())
        status = _wait(browser, lambda d: "No model to ask" in _status(d) and _status(d),
                       "the status line to give up on the model", _START_SECONDS)
        assert "python -m launch.train" in status, status
        _choose(browser, "entity", "Toy Story (1995)")
        message = _wait(browser, _toast, "an error message")
        assert "python -m launch.train" in message, message
    finally:
        server.stop()
