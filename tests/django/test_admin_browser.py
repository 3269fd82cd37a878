"""The admin viewer in a real headless Chromium (Debian's chromium and chromium-driver).

Selenium drives /usr/bin/chromium through /usr/bin/chromedriver: nothing is
downloaded. Set PG_AUDIT_SCREENSHOT_DIR to keep screenshots of the pages.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"{CHROMIUM} is missing: apt-get install chromium chromium-driver", allow_module_level=True
    )

pytestmark = pytest.mark.django_db(transaction=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.expected_conditions import staleness_of  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    # Selenium Manager must not look for a driver or browser online.
    os.environ.setdefault("SE_OFFLINE", "true")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1440,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def tracked_change() -> Iterator[dict[str, str]]:
    """A tracked table whose one row bob inserts and alice renames, committed for live_server."""
    tag = uuid.uuid4().hex[:10]
    table = f"browser_widget_{tag}"
    with connection.cursor() as c:
        c.execute(f"CREATE TABLE public.{table} (id int PRIMARY KEY, name text, price int)")
        c.execute("SELECT audit.enable_tracking(target => %s::regclass)", [f"public.{table}"])
    for actor_id, name, ip, step, statement in (
        (
            "8",
            "bob",
            "192.168.5.9",
            "insert",
            f"INSERT INTO public.{table} VALUES (1, 'Blue mug', 10)",
        ),
        (
            "7",
            "alice",
            "10.1.2.3",
            "update",
            f"UPDATE public.{table} SET name = 'Red mug', price = 12 WHERE id = 1",
        ),
    ):
        with transaction.atomic(), connection.cursor() as c:
            c.execute(
                "SELECT audit.set_context(actor_id => %s, actor_name => %s, ip => %s, "
                "user_agent => 'browser-test', request_id => %s)",
                [actor_id, name, ip, f"req-{step}-{tag}"],
            )
            c.execute(statement)
    yield {"table": f"public.{table}", "tag": tag}
    with connection.cursor() as c:
        c.execute("SELECT audit.disable_tracking(target => %s::regclass)", [f"public.{table}"])
        c.execute(f"DROP TABLE public.{table}")


def _login(browser: WebDriver, base: str, username: str, password: str) -> None:
    browser.delete_all_cookies()
    browser.get(f"{base}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(password)
    _navigate(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click)
    assert browser.find_elements(By.ID, "user-tools"), browser.page_source[:1000]


def _navigate(browser: WebDriver, action: Any) -> None:
    """Do what loads a new page, then wait until the old one is gone: on a busy
    machine a click returns before the next page has loaded."""
    old = browser.find_element(By.TAG_NAME, "html")
    action()
    WebDriverWait(browser, 30).until(staleness_of(old))
    WebDriverWait(browser, 30).until(
        lambda b: b.execute_script("return document.readyState") == "complete"
    )


def _screenshot(browser: WebDriver, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("PG_AUDIT_SCREENSHOT_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(folder / name))


def test_superuser_filters_the_list_and_reads_a_change(
    browser: WebDriver,
    live_server: Any,
    django_user_model: Any,
    tracked_change: dict[str, str],
    tmp_path: Path,
) -> None:
    django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-1")
    _login(browser, live_server.url, "root", "pw-root-1")

    _navigate(browser, browser.find_element(By.LINK_TEXT, "Audit events").click)
    assert "/admin/django_bridge/auditevent/" in browser.current_url

    # Filter by table through the sidebar form, then by action through its link.
    table_input = browser.find_element(By.ID, "audit-filter-table")
    table_input.send_keys(tracked_change["table"])
    _navigate(browser, table_input.submit)
    _navigate(
        browser,
        browser.find_element(By.CSS_SELECTOR, "#changelist-filter a[href*='action=UPDATE']").click,
    )
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1, [r.text for r in rows]
    assert "UPDATE" in rows[0].text and "alice" in rows[0].text and "10.1.2.3" in rows[0].text
    assert "action=UPDATE" in browser.current_url and "table=" in browser.current_url
    # One line per change, values spelled as pg-audit tail spells them (quoted: a space).
    assert 'name: "Blue mug" → "Red mug"' in rows[0].text and "price: 10 → 12" in rows[0].text
    # At 1440 px the list, what-changed column included, fits without scrolling sideways.
    assert browser.execute_script(
        "const r = document.querySelector('#changelist .results');"
        "return r.scrollWidth <= r.clientWidth "
        "&& document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    _screenshot(browser, "audit-changelist.png", tmp_path)

    _navigate(browser, rows[0].find_element(By.CSS_SELECTOR, "th a").click)
    changes = browser.find_element(By.CSS_SELECTOR, "table.audit-changes")
    cells = {
        row.find_element(By.TAG_NAME, "th").text: [
            td.text for td in row.find_elements(By.TAG_NAME, "td")
        ]
        for row in changes.find_elements(By.CSS_SELECTOR, "tbody tr")
    }
    assert cells == {"name": ["Blue mug", "Red mug"], "price": ["10", "12"]}
    assert not browser.find_elements(By.NAME, "_save")
    _screenshot(browser, "audit-detail.png", tmp_path)


def test_staff_user_who_is_not_superuser_is_refused(
    browser: WebDriver,
    live_server: Any,
    django_user_model: Any,
    tracked_change: dict[str, str],
) -> None:
    django_user_model.objects.create_user("clerk", "clerk@example.com", "pw-clerk-1", is_staff=True)
    _login(browser, live_server.url, "clerk", "pw-clerk-1")
    assert not browser.find_elements(By.LINK_TEXT, "Audit events")
    browser.get(f"{live_server.url}/admin/django_bridge/auditevent/")
    assert "403" in browser.page_source and "Forbidden" in browser.page_source
    assert "alice" not in browser.page_source and not browser.find_elements(By.ID, "result_list")
