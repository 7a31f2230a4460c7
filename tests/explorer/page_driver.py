"""Drives the explorer page (launch.explore) in Debian's headless Chromium through
Selenium: the server in a subprocess, and the page's fields by their element ids."""

import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

from helpers import ROOT

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# CI sets ELC_REQUIRE_BROWSER: there a missing browser fails the test instead of skipping it.
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("ELC_REQUIRE_BROWSER"),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
           "chromium-driver)")

_SERVING = re.compile(r"serving the explorer at (http://127\.0\.0\.1:\d+/)")
START_SECONDS = 300
ANSWER_SECONDS = 120


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
        self.serving.wait(START_SECONDS)
        if not self.url:
            self.stop()
            pytest.fail(f"launch.explore did not serve within {START_SECONDS}s:\n"
                        + "".join(self.lines[-40:]))
        return self.url

    def asked(self, what: str) -> list[str]:
        """The log lines of the answers generated so far whose label contains ``what``
        (elc.generation.answering logs one per answer)."""
        return [line for line in list(self.lines) if "prompts/s" in line and what in line]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log_path.write_text("".join(self.lines))


def start_browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or "chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER or "chromedriver"), options=options)


def wait(driver, condition, what, seconds=ANSWER_SECONDS):
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


def choose(driver, element_id, text):
    """Types ``text`` into dropdown ``element_id`` and clicks the matching option."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    field = driver.find_element(By.CSS_SELECTOR, f"#{element_id} input")
    field.click()
    field.send_keys(Keys.CONTROL, "a")  # replaces what the field holds
    field.send_keys(text)
    option = wait(driver, lambda d: [
        o for o in d.find_elements(By.CSS_SELECTOR, f"#{element_id} li[role=option]")
        if o.get_attribute("aria-label") == text], f"option {text!r}", 20)
    option[0].click()


def text(driver, element_id):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.CSS_SELECTOR, f"#{element_id} textarea").get_attribute("value")


def field_value(driver, element_id):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.CSS_SELECTOR, f"#{element_id} input").get_attribute("value")


def tab(driver, name):
    from selenium.webdriver.common.by import By
    [button] = [t for t in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]")
                if t.text == name]
    button.click()


def selected_tab(driver):
    from selenium.webdriver.common.by import By
    return " ".join(t.text for t in driver.find_elements(
        By.CSS_SELECTOR, "button[role=tab][aria-selected=true]"))


def status(driver):
    from selenium.webdriver.common.by import By
    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "#status"))


def toast(driver):
    from selenium.webdriver.common.by import By
    return " ".join(t.text for t in driver.find_elements(By.CSS_SELECTOR, ".toast-body"))


def map_points(driver):
    """The map's entity circles (the clickable ones)."""
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, "#map circle[data-row]")


def map_labels(driver, selector="circle[data-row]"):
    """The ``data-label`` of the map's elements matching ``selector`` (entity circles by
    default; ``.map-mark`` for the marks), read in one script: the map redraws its marks
    while an answer arrives, which would leave element handles stale."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.dataset.label);",
        f"#map {selector}")


def click_map_point(driver, row):
    """Clicks the map's entity of ``row``; returns its label (as the map names it)."""
    from selenium.webdriver.common.by import By
    circle = driver.find_element(By.CSS_SELECTOR, f"#map circle[data-row='{row}']")
    label = circle.get_attribute("data-label")
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', "
                          "{bubbles: true}))", circle)
    return label


def slide(driver, element_id, values, gap_ms):
    """Moves slider ``element_id`` through ``values``, one every ``gap_ms`` ms, as a drag
    does: each value is set and its input and change events fired, from browser timers
    (Selenium's keystrokes wait for the page to finish rendering each answer, so they
    cannot arrive while a request runs)."""
    driver.execute_script("""
        const [slider, values, gap] = [document.querySelector(arguments[0]), arguments[1],
                                       arguments[2]];
        let step = 0;
        const move = () => {
          slider.value = String(values[step++]);
          slider.dispatchEvent(new Event('input', {bubbles: true}));
          slider.dispatchEvent(new Event('change', {bubbles: true}));
          if (step < values.length) setTimeout(move, gap);
        };
        move();
    """, f"#{element_id} input[type=range]", list(values), gap_ms)
