"""The browser that the page tests drive (see page_driver.py)."""

import pytest


@pytest.fixture(scope="module")
def browser():
    from page_driver import start_browser
    driver = start_browser()
    yield driver
    driver.quit()
