"""The dashboard of `switchyard up`, in a real browser: Debian's headless Chromium driven over
WebDriver. What a user does with it: see the runners and algorithms, try an algorithm through its
schema form, watch a failing task land in dead letters and requeue it, see a runner leave, and
keep watching across a restart of the server.

With SWITCHYARD_SCREENSHOTS=DIR, each main view is saved there as a PNG (docs/images holds the
ones the README shows); without it they go to the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from switchyard import Client, SubmitFailed
from support import (REPO, Controller, Discovery, Process, Runner, Up, Vhost, binary, eventually, free_port,
                     wait_http)

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT = 30.0



@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("chromium and chromium-driver are missing: scripts/setup-system.sh installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(argument)
    # Selenium Manager would otherwise look for a driver online.
    monkeypatch.setenv("SE_OFFLINE", "true")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def until(browser: webdriver.Chrome, check: Callable[[], Any], what: str) -> Any:
    """Waits until `check` returns something truthy; a stale element (the page re-rendered under
    us) is just another try."""
    def attempt(_: Any) -> Any:
        try:
            return check()
        except (StaleElementReferenceException, WebDriverException):
            return None
    return WebDriverWait(browser, WAIT, poll_frequency=0.1).until(attempt, message=what)


def text_of(browser: webdriver.Chrome, selector: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, selector).text)


def rows(browser: webdriver.Chrome, table: str) -> list[WebElement]:
    return list(browser.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr[data-{row_key(table)}]"))


def row_key(table: str) -> str:
    return {"runners": "runner", "dead-letters": "key", "tasks": "task", "algorithms": "algorithm"}[table]


def screenshot(browser: webdriver.Chrome, tmp_path: Path, name: str) -> None:
    folder = Path(os.environ.get("SWITCHYARD_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(folder / f"dashboard-{name}.png"))


def fill(browser: webdriver.Chrome, field: str, value: str) -> None:
    element = browser.find_element(By.ID, f"field-{field}")
    element.clear()
    element.send_keys(value)


def submit_form(browser: webdriver.Chrome) -> None:
    browser.find_element(By.ID, "submit-task").click()


def go(browser: webdriver.Chrome, up: Up, view: str) -> None:
    browser.get(f"{up.url}/#/{view}")


def test_the_dashboard_shows_and_steers_a_running_worker(browser: webdriver.Chrome, tmp_path: Path) -> None:
    up = Up(tmp_path / "data", algorithms="echo,language_detection")
    runner = Runner("sample", "--discovery", up.discovery, "--algorithms", "shout,fails,classify")
    try:
        # Overview: up's own runner and the Python one, with what they host.
        go(browser, up, "")
        until(browser, lambda: len(rows(browser, "runners")) == 2, "two runners listed")
        hosted = {row.get_attribute("data-runner"): row.text for row in rows(browser, "runners")}
        assert any("echo" in text and "language_detection" in text for text in hosted.values()), hosted
        assert any("shout" in text and runner.url in text for text in hosted.values()), hosted
        assert text_of(browser, "#runner-count .figure") == "2"
        assert text_of(browser, "#connection") == "live"

        # Algorithms: every one, built-in and Python alike.
        go(browser, up, "algorithms")
        until(browser, lambda: {"echo", "language_detection", "shout", "fails", "classify"}
              <= {row.get_attribute("data-algorithm") for row in rows(browser, "algorithms")},
              "every algorithm listed")
        screenshot(browser, tmp_path, "algorithms")

        # A schema form submits a task and shows its result when it arrives.
        browser.find_element(By.LINK_TEXT, "shout").click()
        until(browser, lambda: browser.find_element(By.ID, "field-text"), "the shout form")
        fill(browser, "text", "hello dashboard")
        submit_form(browser)
        until(browser, lambda: "HELLO DASHBOARD" in text_of(browser, "#task-result"), "the shout result")
        assert text_of(browser, "#task-state") == "done"
        screenshot(browser, tmp_path, "algorithm")

        # Bad input gets the API's own error, next to the field it is about.
        go(browser, up, "algorithms/classify")
        until(browser, lambda: browser.find_element(By.ID, "field-top_k"), "the classify form")
        fill(browser, "image_url", "http://example.invalid/cat.jpg")
        fill(browser, "top_k", "99")
        submit_form(browser)
        until(browser, lambda: "maximum" in text_of(browser, "#error-top_k"), "the top_k error")
        fill(browser, "top_k", "many")
        submit_form(browser)
        until(browser, lambda: "integer" in text_of(browser, "#error-top_k"), "the type error")
        assert text_of(browser, "#error-image_url") == ""

        # A task the runner refuses lands in dead letters, with its reason; its page shows the
        # failed attempt.
        go(browser, up, "algorithms/fails")
        until(browser, lambda: browser.find_element(By.ID, "field-kind"), "the fails form")
        fill(browser, "kind", "bad_input")
        submit_form(browser)
        until(browser, lambda: "rejected" in text_of(browser, "#task-error"), "the refusal")
        task_id = text_of(browser, "#submitted-id")
        go(browser, up, f"tasks/{task_id}")
        until(browser, lambda: "kind must be something else" in text_of(browser, "#task-history"),
              "the failed attempt in the task's history")
        assert runner.url in text_of(browser, "#task-history")
        assert '"kind": "bad_input"' in text_of(browser, "#task-payload")
        screenshot(browser, tmp_path, "task")

        go(browser, up, "tasks")
        until(browser, lambda: len(rows(browser, "tasks")) >= 2, "the task list")
        screenshot(browser, tmp_path, "tasks")

        go(browser, up, "dead-letters")
        until(browser, lambda: any(row.get_attribute("data-task") == task_id for row in rows(browser, "dead-letters")),
              "the dead letter listed")
        letter = next(row for row in rows(browser, "dead-letters") if row.get_attribute("data-task") == task_id)
        assert "rejected" in letter.find_element(By.CSS_SELECTOR, ".reason").text
        assert "kind must be something else" in letter.find_element(By.CSS_SELECTOR, ".last-error").text
        screenshot(browser, tmp_path, "dead-letters")

        # Requeue it, confirming first; the answer is shown. Replayed as is, it fails again.
        letter.find_element(By.CSS_SELECTOR, ".requeue-one").click()
        until(browser, lambda: browser.find_element(By.ID, "confirm").is_displayed(), "the confirmation")
        assert task_id in text_of(browser, "#confirm-text")
        browser.find_element(By.ID, "confirm-ok").click()
        until(browser, lambda: text_of(browser, "#requeue-result") == "requeued 1 dead letter", "the requeue answer")
        record = eventually(lambda: _final_at(up.url, task_id), timeout=WAIT)
        assert record["attempts"] == 1 and record["status"] == "failed", record

        # A runner that stops drops out of the overview while it is open.
        go(browser, up, "")
        until(browser, lambda: len(rows(browser, "runners")) == 2, "two runners")
        until(browser, lambda: text_of(browser, "#queue-dead .figure") == "1", "one dead letter counted")
        screenshot(browser, tmp_path, "overview")
        runner.process.stop()
        until(browser, lambda: len(rows(browser, "runners")) == 1, "the stopped runner gone")

        # The page keeps going across a restart of the server, and says so while it is down.
        up.restart(lambda: until(browser, lambda: "lost contact" in text_of(browser, "#connection"),
                                 "the lost connection shown"))
        until(browser, lambda: text_of(browser, "#connection") == "live", "contact again")
        until(browser, lambda: len(rows(browser, "runners")) == 1, "runners listed again")
    finally:
        runner.process.stop()
        up.process.stop()


def test_an_image_algorithm_takes_a_file_from_the_form(browser: webdriver.Chrome, tmp_path: Path) -> None:
    """A user trying the classifier picks a photo; nobody pastes base64. The page uploads the file
    as a multipart form, the other fields beside it."""
    up = Up(tmp_path / "data", algorithms="image_classifier")
    try:
        go(browser, up, "algorithms/image_classifier")
        until(browser, lambda: browser.find_element(By.ID, "field-image_base64"), "the classifier form")
        picker = browser.find_element(By.ID, "field-image_base64")
        assert picker.get_attribute("type") == "file"
        picker.send_keys(str(REPO / "crates/algorithms/testdata/images/coffee.png"))
        fill(browser, "top_k", "2")
        submit_form(browser)
        until(browser, lambda: "espresso" in text_of(browser, "#task-result"), "the classification")
        assert text_of(browser, "#task-state") == "done"
        assert text_of(browser, "#task-result").count('"label"') == 3, "label and a top 2"

        # The API's refusal of the other fields still lands beside them.
        picker = browser.find_element(By.ID, "field-image_base64")
        picker.send_keys(str(REPO / "crates/algorithms/testdata/images/coffee.png"))
        fill(browser, "top_k", "many")
        submit_form(browser)
        until(browser, lambda: "top_k" in text_of(browser, "#error-top_k"), "the top_k error")
    finally:
        up.process.stop()


def test_with_a_token_the_dashboard_asks_for_it_and_never_shows_it(browser: webdriver.Chrome,
                                                                    tmp_path: Path) -> None:
    token = "dashboard-s3cret"
    up = Up(tmp_path / "data", algorithms="echo,language_detection", token=token)
    try:
        # The Python client sends it too (token= or SWITCHYARD_TOKEN); without it up refuses.
        with Client(up.url, token=token) as client:
            assert client.submit("echo", {"text": "hey"}, wait=True).result()["length"] == 3
        with Client(up.url) as client, pytest.raises(SubmitFailed, match="401.*token"):
            client.submit("echo", {"text": "hey"})

        go(browser, up, "algorithms/echo")
        until(browser, lambda: browser.find_element(By.ID, "token-form").is_displayed(), "the token form")
        until(browser, lambda: browser.find_element(By.ID, "field-text"), "the echo form")
        fill(browser, "text", "hi")
        submit_form(browser)
        until(browser, lambda: "token" in text_of(browser, "#form-error"), "the refusal without a token")

        browser.find_element(By.ID, "token").send_keys("wrong")
        browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
        until(browser, lambda: text_of(browser, "#token-state") == "wrong token", "a wrong token refused")

        browser.find_element(By.ID, "token").send_keys(token)
        browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
        until(browser, lambda: text_of(browser, "#token-state") == "signed in", "signed in")
        assert browser.find_element(By.ID, "token").get_attribute("value") == ""
        submit_form(browser)
        until(browser, lambda: '"length": 2' in text_of(browser, "#task-result"), "the echo result")
        assert token not in browser.page_source
    finally:
        up.process.stop()


def test_the_dashboard_command_watches_components_running_apart_on_rabbitmq(
        browser: webdriver.Chrome, tmp_path: Path, vhost: Vhost, discovery: Discovery) -> None:
    runner = Runner("sample", "--discovery", discovery.url, "--algorithms", "shout,fails")
    controller = Controller(vhost, discovery)
    url = f"http://127.0.0.1:{free_port()}"
    dashboard = Process([binary(), "dashboard", "--listen", url[len("http://"):], "--amqp", vhost.url,
                         "--discovery", discovery.url, "--data", str(tmp_path / "dashboard")])
    try:
        wait_http(f"{url}/health")
        browser.get(f"{url}/#/algorithms/shout")
        until(browser, lambda: browser.find_element(By.ID, "field-text"), "the shout form")
        fill(browser, "text", "apart")
        submit_form(browser)
        until(browser, lambda: "APART" in text_of(browser, "#task-result"), "the result, through RabbitMQ")

        # A refused task: RabbitMQ's dead-letter queue, counted and listed.
        with httpx.Client(base_url=url, timeout=10) as api:
            refused = api.post("/v1/tasks", json={"algorithm": "fails", "payload": {"kind": "bad_input"}})
            assert refused.status_code == 202, refused.text
            refused_id = refused.json()["id"]
            assert eventually(lambda: _final_at(url, refused_id), timeout=WAIT)["status"] == "failed"
        browser.get(f"{url}/#/")
        until(browser, lambda: len(rows(browser, "runners")) == 1, "the Python runner")
        assert runner.url in text_of(browser, "#runners")
        until(browser, lambda: text_of(browser, "#queue-dead .figure") == "1", "the dead letter counted")
        browser.get(f"{url}/#/dead-letters")
        until(browser, lambda: any(row.get_attribute("data-task") == refused_id for row in rows(browser, "dead-letters")),
              "the dead letter listed")
    finally:
        dashboard.stop()
        controller.process.stop()
        runner.process.stop()


def _final_at(url: str, task_id: str) -> dict[str, Any]:
    record: dict[str, Any] = httpx.get(f"{url}/v1/tasks/{task_id}?wait=5s", timeout=10).json()
    assert record["status"] in {"done", "failed", "dead"}, record
    return record
