"""The station in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by selenium.

Upload a synthetic image, read the grade, decide reject, move an anomaly model's threshold slider
and watch its decision change, accept, and find both decisions in the SQLite file (a bench started
with ``--no-login``). With logins: log in as an operator, inspect, decide, find the operator's name
in the history, log out. Screenshots go
to the test's tmp folder; with ``DEFECT_STATION_SCREENSHOT=path.png`` the first one is also copied
there (how ``docs/images/station.png`` is made). Skipped, with the reason, only when Chromium,
its driver or selenium is not installed (``.ci/run`` installs them).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.fixtures.station import add_user, png_bytes, running_station, steel_image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)")


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, timeout=60):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # a card is replaced when its threshold moves: an element read a moment ago may be gone
    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=[StaleElementReferenceException]).until(condition)


def _screenshot(driver, path: Path) -> Path:
    """The whole page, below the fold too (Chromium's DevTools protocol)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                             "clip": clip})
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 10_000
    return path


def _upload(driver, path: Path, previous: str | None) -> str:
    """Choose ``path`` in the file input, press the button, wait for a new inspection; its id."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "file-input").send_keys(str(path))
    driver.find_element(By.ID, "upload-button").click()
    _wait(driver, lambda d: d.find_element(By.ID, "result").get_attribute("data-inspection") not in (None, previous)
          or d.find_element(By.ID, "message").is_displayed())
    assert not driver.find_element(By.ID, "message").is_displayed(), driver.find_element(By.ID, "message").text
    return driver.find_element(By.ID, "result").get_attribute("data-inspection")


def _decide(driver, button: str, comment: str) -> str:
    from selenium.webdriver.common.by import By

    operator = driver.find_element(By.ID, "operator")
    if not operator.get_attribute("value"):
        operator.send_keys("Ana Operator")
    box = driver.find_element(By.ID, "comment")
    box.clear()
    box.send_keys(comment)
    driver.find_element(By.ID, button).click()
    _wait(driver, lambda d: d.find_element(By.ID, "decision-status").text.startswith("Stored:"))
    return driver.find_element(By.ID, "decision-status").text


def test_operator_decides_in_a_real_browser(station_irs, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from defect_plugins.data import make_anomaly_dataset, make_classification_dataset

    # synthetic images made here, with the project's generators
    neu = make_classification_dataset(tmp_path / "neu", per_class=1, image_size=200, seed=3)
    part = sorted((neu / "scratches").iterdir())[0]
    steel = make_anomaly_dataset(tmp_path / "steel", num_train=4, num_test_good=2, num_test_defect=1, image_size=32,
                                 seed=0, defect_types=("scratch", "patch"))
    candidates = sorted((steel / "test" / "patch").iterdir()) + sorted((steel / "test" / "scratch").iterdir())
    db = tmp_path / "station.sqlite"
    models = [station_irs["classifier"], station_irs["segmentor"], station_irs["anomaly"]]
    with running_station(models, tmp_path, "--db", str(db), "--no-login") as station:  # a bench: typed names
        browser.get(station.url)
        _wait(browser, lambda d: d.find_element(By.ID, "status-line").text.startswith("models:"))
        assert "neu_cls (classifier, FP32 weights @ f32" in browser.find_element(By.ID, "status-line").text
        assert "anyone who reaches this page acts as any operator" in browser.find_element(
            By.ID, "no-login-banner").text
        assert not browser.find_element(By.ID, "user-box").is_displayed()

        # 1. a 200 x 200 synthetic scratch: the grade is shown; the operator rejects it
        first = _upload(browser, part, None)
        grade = browser.find_element(By.ID, "grade").text
        assert grade in ("ok", "minor", "major", "reject")
        cards = browser.find_elements(By.CSS_SELECTOR, ".model-card")
        assert [c.get_attribute("data-family") for c in cards] == ["classifier", "segmentor", "anomaly"]
        table = cards[0].find_element(By.CSS_SELECTOR, "table.geometry")
        assert "image:" in table.find_element(By.CSS_SELECTOR, "tr.totals").text
        _wait(browser, lambda d: d.execute_script(
            "return [...document.images].every(i => !i.src || (i.complete && i.naturalWidth > 0))"))
        shot = _screenshot(browser, tmp_path / "station.png")
        if os.environ.get("DEFECT_STATION_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["DEFECT_STATION_SCREENSHOT"])
        assert "Stored: reject" in _decide(browser, "reject", "scratch across the strip")

        # 2. an image of the anomaly model's own domain, whose score the slider can pass (not clipped at 1)
        previous = first
        for candidate in candidates:
            previous = _upload(browser, candidate, previous)
            card = browser.find_element(By.CSS_SELECTOR, ".model-card[data-family=anomaly]")
            score = float(card.find_element(By.CSS_SELECTOR, ".score").text)
            if 0.0 < score < 1.0:
                break
        else:
            pytest.fail(f"every synthetic image scored 0 or 1 with the tiny anomaly model (last {score})")
        second = previous

        def anomaly_decision(d):
            return d.find_element(By.CSS_SELECTOR, ".model-card[data-family=anomaly] .decision").text

        def slide(key: str, expected_value: str) -> None:
            slider = browser.find_element(By.CSS_SELECTOR, ".model-card[data-family=anomaly] input.threshold")
            slider.send_keys(key)  # keyboard on a range input: 'input' and 'change', as a person's drag
            _wait(browser, lambda d: d.find_element(
                By.CSS_SELECTOR, ".model-card[data-family=anomaly] input.threshold").get_attribute("value")
                == expected_value)

        slide(Keys.END, "1")  # threshold 1 > score: good
        _wait(browser, lambda d: anomaly_decision(d) == "good")
        slide(Keys.HOME, "0")  # threshold 0 <= score: defect, the whole map above it
        _wait(browser, lambda d: anomaly_decision(d) == "defect")
        assert browser.find_element(By.CSS_SELECTOR, ".model-card[data-family=anomaly] .model-grade").text == "reject"
        assert browser.find_element(By.ID, "grade").text == "reject"  # the station's grade follows
        assert "Stored: accept" in _decide(browser, "accept", "checked by hand")
        _screenshot(browser, tmp_path / "station_after_slider.png")
        runs = [m["inferences"] for m in station.request("api/status")[1]["models"]]

        # 3. the history view lists both decisions
        browser.find_element(By.ID, "tab-history").click()
        _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history-table tbody tr")) >= 2)
        rows = {r.get_attribute("data-id"): r.text for r in browser.find_elements(
            By.CSS_SELECTOR, "#history-table tbody tr")}
        assert "reject" in rows[first] and "scratch across the strip" in rows[first]
        assert "accept" in rows[second]

    # the slider did not run the models again: one inference per upload
    assert runs == [len(rows)] * 3
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        decided = {str(r["inspection_id"]): r for r in conn.execute("SELECT * FROM decisions")}
        inspections = {str(r["id"]): r for r in conn.execute("SELECT * FROM inspections")}
    assert decided[first]["decision"] == "reject" and decided[first]["comment"] == "scratch across the strip"
    assert decided[first]["operator"] == decided[second]["operator"] == "Ana Operator"  # remembered by the page
    assert decided[first]["system_grade"] == grade and inspections[first]["grade"] == grade
    assert inspections[first]["source"] == f"upload:{part.name}" and len(inspections[first]["image_sha256"]) == 64
    assert decided[second]["decision"] == "accept" and decided[second]["system_grade"] == "reject"
    assert json.loads(decided[second]["thresholds"])["akf"] == 0.0


def test_an_operator_logs_in_inspects_and_decides_in_a_real_browser(station_irs, browser, tmp_path):
    from selenium.webdriver.common.by import By

    add_user(tmp_path, "station.sqlite", "Erin", "engineer", "engineer pass 1")
    add_user(tmp_path, "station.sqlite", "Olga Operator", "operator", "operator pass 1")
    part = tmp_path / "part.png"
    part.write_bytes(png_bytes(steel_image(7)))
    with running_station([station_irs["anomaly"]], tmp_path, "--db", "station.sqlite") as station:
        browser.get(station.url)  # no session: the station sends the browser to its login page
        _wait(browser, lambda d: d.current_url.endswith("/login"))

        def log_in(password: str) -> None:
            for field, value in (("login-name", "Olga Operator"), ("login-password", password)):
                box = browser.find_element(By.ID, field)
                box.clear()
                box.send_keys(value)
            browser.find_element(By.ID, "login-button").click()

        log_in("not the password")
        _wait(browser, lambda d: d.find_element(By.ID, "login-message").is_displayed())
        assert browser.find_element(By.ID, "login-message").text == (
            "wrong user name or password (or the account is disabled)")
        _screenshot(browser, tmp_path / "login.png")
        log_in("operator pass 1")
        _wait(browser, lambda d: d.find_element(By.ID, "status-line").text.startswith("models:"))
        _wait(browser, lambda d: d.find_element(By.ID, "user-name").text == "Olga Operator")
        assert browser.find_element(By.ID, "user-role").text == "(operator)"
        assert not browser.find_element(By.ID, "no-login-banner").is_displayed()
        operator = browser.find_element(By.ID, "operator")
        assert operator.get_attribute("value") == "Olga Operator" and operator.get_attribute("readonly")
        assert browser.execute_script("return document.cookie") == ""  # HttpOnly: no script reads the session

        inspection = _upload(browser, part, None)
        slider = browser.find_element(By.CSS_SELECTOR, ".model-card[data-family=anomaly] input.threshold")
        assert not slider.is_enabled()  # thresholds are an engineer's
        assert "by Olga Operator" in _decide(browser, "reject", "dark blob")
        _screenshot(browser, tmp_path / "station_logged_in.png")

        browser.find_element(By.ID, "tab-history").click()
        _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#history-table tbody tr[data-id='{inspection}']"))
        row = browser.find_element(By.CSS_SELECTOR, f"#history-table tbody tr[data-id='{inspection}']").text
        assert "reject" in row and "Olga Operator" in row and "dark blob" in row

        browser.find_element(By.ID, "logout-button").click()
        _wait(browser, lambda d: d.current_url.endswith("/login"))
        browser.get(station.url)
        _wait(browser, lambda d: d.current_url.endswith("/login"))  # the session is gone
    with sqlite3.connect(tmp_path / "station.sqlite") as conn:
        decided = conn.execute("SELECT operator, decision FROM decisions").fetchall()
        actions = [row[0] for row in conn.execute("SELECT action FROM audit WHERE actor = 'Olga Operator'")]
    assert decided == [("Olga Operator", "reject")]
    assert actions == ["login_failed", "login", "decision", "logout"]


def test_the_line_page_shows_each_part_and_takes_the_operators_decision(station_irs, browser, tmp_path):
    """Parts arrive by the watched folder (a camera); the operator's line page follows them and signs a decision.

    With ``DEFECT_STATION_LINE_SCREENSHOT=path.png`` the page is also saved there (``docs/images/station_line.png``).
    """
    import cv2
    from selenium.webdriver.common.by import By

    add_user(tmp_path, "station.sqlite", "Erin", "engineer", "engineer pass 1")
    add_user(tmp_path, "station.sqlite", "Olga Operator", "operator", "operator pass 1")
    camera = tmp_path / "camera"
    camera.mkdir()
    with running_station([station_irs["anomaly"]], tmp_path, "--db", "station.sqlite", "--watch", str(camera),
                         "--watch-pattern", r"(?P<lot>L\d+)_(?P<part_id>\d+)\.png",
                         "--line", "press-2") as station:
        browser.get(station.url + "line")
        _wait(browser, lambda d: d.current_url.endswith("/login"))
        for field, value in (("login-name", "Olga Operator"), ("login-password", "operator pass 1")):
            browser.find_element(By.ID, field).send_keys(value)
        browser.find_element(By.ID, "login-button").click()
        _wait(browser, lambda d: d.current_url.endswith("/"))
        browser.get(station.url + "line")
        _wait(browser, lambda d: d.find_element(By.ID, "line-title").text == "Line press-2")
        for number, seed in enumerate((3, 5, 8), start=1):
            assert cv2.imwrite(str(camera / f"L42_{number:06d}.png"), steel_image(seed, defect="blob"))
            _wait(browser, lambda d, n=number: d.find_element(By.ID, "part-id").text == f"{n:06d}")
        verdict = browser.find_element(By.ID, "verdict-word").text
        assert verdict in ("OK", "NG") and browser.find_element(By.ID, "part-lot").text == "L42"
        assert len(browser.find_elements(By.CSS_SELECTOR, "#strip li")) == 3
        assert browser.find_element(By.ID, "count-inspected").text == "3"
        _wait(browser, lambda d: d.execute_script(
            "const i = document.getElementById('part-image'); return i.complete && i.naturalWidth > 0"))
        assert not browser.find_element(By.ID, "no-login").is_displayed()
        browser.find_element(By.ID, "reject-button").click()
        _wait(browser, lambda d: d.find_element(By.ID, "decided").text == "reject by Olga Operator")
        shot = _screenshot(browser, tmp_path / "station_line.png")
        if os.environ.get("DEFECT_STATION_LINE_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["DEFECT_STATION_LINE_SCREENSHOT"])
        browser.find_element(By.CSS_SELECTOR, "#strip li:last-child button").click()  # the first part again
        _wait(browser, lambda d: d.find_element(By.ID, "part-id").text == "000001")
    with sqlite3.connect(tmp_path / "station.sqlite") as conn:
        decided = conn.execute("SELECT i.part_id, d.operator, d.decision FROM decisions AS d JOIN inspections AS i "
                               "ON i.id = d.inspection_id").fetchall()
    assert decided == [("000003", "Olga Operator", "reject")]
