"""A real headless Chromium (Debian's) driven by Playwright against pytest-django's live server.

Screenshots, when a test takes one, go to pytest's temporary folder and are never committed.
"""

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium_browser():
    """One browser per test module, so that Playwright's event loop is gone before any other
    module's tests run (Django refuses ORM calls while a loop runs in the thread)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        # The loop runs in this thread, but the tests' own ORM calls are synchronous and safe.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


class ConsoleErrors(list):
    """Console errors and uncaught exceptions the page raised."""


@pytest.fixture
def browser_page(chromium_browser):
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors = ConsoleErrors()
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "response",
        lambda response: (
            errors.append(f"HTTP {response.status} {response.url}")
            if response.status >= 400
            else None
        ),
    )
    page.console_errors = errors
    yield page
    context.close()


@pytest.fixture
def logged_in_page(browser_page, live_server, staff_user):
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/?next=/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "correct-horse-44")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    return page


@pytest.fixture
def serial_worker(broker, transactional_db):
    """One worker thread is enough for the pages' runs, and keeps the test's timing simple."""
    import dramatiq

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()
