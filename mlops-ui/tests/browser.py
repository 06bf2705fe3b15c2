"""The UI in a real browser (Chromium driven by selenium), over a store the quickstart filled.

Usage: python browser.py --mlops target/debug/mlops --store ./mlops-data --shots DIR

It starts `mlops ui` twice on free ports of 127.0.0.1 (open, then behind a token), clicks
experiments → runs → run → chart → compare → models → version → lineage → dataset → drift →
pipelines → decisions as a user would, asserts what a user would check (run names, metric
values, the alias, the drift verdict, the verified decision chain), and saves a screenshot of
every page into DIR for review.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def ui(mlops: str, store: str, *extra: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [mlops, "--store", store, "ui", "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/static/mlops.css", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"mlops ui exited: {proc.stdout.read() if proc.stdout else ''}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def api(base: str, path: str) -> Any:
    with urllib.request.urlopen(f"{base}{path}", timeout=30) as r:
        return json.load(r)


class Browser:
    def __init__(self, shots: Path) -> None:
        options = Options()
        options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1400,1000"):
            options.add_argument(arg)
        service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
        self.driver: WebDriver = webdriver.Chrome(options=options, service=service)
        self.driver.implicitly_wait(5)
        self.shots = shots
        self.count = 0

    def open(self, url: str) -> None:
        self.driver.get(url)

    def shot(self, name: str) -> None:
        self.count += 1
        # The whole page, not just the window: grow the window to the document first.
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1400, min(max(int(height), 1000), 6000))
        self.driver.save_screenshot(str(self.shots / f"{self.count:02d}-{name}.png"))
        self.driver.set_window_size(1400, 1000)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str = "body") -> str:
        return self.find(css).text

    def click_link(self, text: str) -> None:
        self.driver.find_element(By.LINK_TEXT, text).click()

    def title(self) -> str:
        return self.driver.title

    def quit(self) -> None:
        self.driver.quit()


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def walk(b: Browser, base: str) -> None:
    # Experiments → the quickstart's experiment.
    b.open(f"{base}/")
    check("Experiments" in b.text("h1"), "/ lands on the experiments")
    b.shot("experiments")
    b.click_link("quickstart")
    check(b.text("h1") == "Experiment quickstart", b.text("h1"))
    experiment = next(e for e in api(base, "/api/experiments")["experiments"] if e["name"] == "quickstart")
    runs = api(base, f"/api/runs?experiment_ids={experiment['experiment_id']}&max_results=1000")["runs"]
    trained = [r for r in runs if "val_accuracy" in r["data"]["metrics"]]
    check(len(trained) >= 2, f"the quickstart trains at least twice ({len(trained)} runs)")
    names = [a.text for a in b.all("table#runs a.run")]
    check(any(r["info"]["run_name"] in names for r in trained), f"a training run is listed: {names}")
    b.shot("runs")

    # The filter box: MLflow's grammar, and an error beside it.
    box = b.find("#filter")
    box.clear()
    box.send_keys("metrics.val_accuracy > 0.5")
    b.find("#search").click()
    filtered = b.all("table#runs a.run")
    check(0 < len(filtered) <= len(names), "the filter keeps some runs")
    b.find("#filter").clear()
    b.find("#filter").send_keys("metrics.val_accuracy >> 0.5")
    b.find("#search").click()
    check("filter" in b.text("#filter-error").lower() or ">>" in b.text("#filter-error"),
          f"the bad filter is explained: {b.text('#filter-error')}")
    b.shot("runs-bad-filter")

    # Sort by a metric column (server-side): the first row has the best accuracy.
    b.find("#filter").clear()
    b.find("#search").click()
    b.driver.find_element(By.PARTIAL_LINK_TEXT, "val_accuracy").click()
    best = max(trained, key=lambda r: r["data"]["metrics"]["val_accuracy"]["value"])
    first = b.all("table#runs a.run")[0].text
    check(first == best["info"]["run_name"], f"sorted by val_accuracy, {first} is first, not {best['info']['run_name']}")

    # The best run's page: its metric value as the API has it.
    b.all("table#runs a.run")[0].click()
    check(b.text("#run-name") == best["info"]["run_name"], "the run page names the run")
    value = best["data"]["metrics"]["val_accuracy"]["value"]
    check(f"{value:.6f}".rstrip("0").rstrip(".") in b.text("table#metrics"),
          f"val_accuracy {value} is shown")
    b.shot("run")

    # Its artifacts.
    b.find("#artifacts").click()
    b.shot("artifacts")
    files = b.all("table#artifact-list a")
    check(len(files) > 0, "the best run has artifacts")
    b.driver.back()

    # Its chart, then log scale.
    b.driver.find_element(By.XPATH, "//table[@id='metrics']//tr[td[1]='train_loss']//a").click()
    check(b.text("#metric") == "train_loss", "the chart shows train_loss")
    check(len(b.all("svg.chart polyline")) == 1, "one line")
    b.find("#log").click()
    b.find("#draw").click()
    # The form submits a navigation: wait for it instead of reading the old URL.
    WebDriverWait(b.driver, 10).until(lambda d: "log=1" in d.current_url)
    check("log=1" in b.driver.current_url, "log scale is in the URL")
    b.shot("chart")

    # Compare two training runs.
    b.open(f"{base}/experiments/{best['info']['experiment_id']}")
    boxes = [x for x in b.all("table#runs input[type=checkbox]")
             if x.get_attribute("value") in {r["info"]["run_id"] for r in trained[:2]}]
    for box_ in boxes:
        box_.click()
    b.find("#compare").click()
    check(b.text("h1") == "Compare 2 runs", b.text("h1"))
    check(len(b.all("table#metric-diff tr")) > 1, "metrics are compared")
    check(len(b.all("svg.chart")) >= 1, "charts are overlaid")
    b.shot("compare")

    # Models → churn → the champion version → lineage.
    b.open(f"{base}/models")
    b.shot("models")
    b.click_link("churn")
    check(b.text("#model-name") == "churn", "model page")
    champion = api(base, "/api/models/churn")["model"]["aliases"]["champion"]
    b.shot("model")
    b.click_link(f"v{champion}")
    check("champion" in b.text("#aliases"), "the champion alias is on its version")
    check(len(b.all("svg#lineage rect")) >= 3, "the lineage graph is drawn")
    check("verified" in b.text("#chain"), "the decision log verifies")
    check(len(b.all("table#decisions tr")) > 1, "decisions about the version are listed")
    b.shot("version")

    # From the lineage graph to the training data.
    link = b.all("svg#lineage a")[0]
    b.driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", link)
    check(b.text("#dataset-name") != "", "the dataset page opens from the lineage")
    check(len(b.all("table#columns tr")) > 1, "column statistics are shown")
    versions = len(b.all("table#dataset-versions tr")) - 1
    if versions >= 2:
        b.find("#from").send_keys("1")
        b.find("#to").send_keys(str(versions))
        b.find("#diff").click()
        check(b.find("#schema-diff").text != "", "a schema diff is shown")
    b.shot("dataset")

    # Drift: reports over time, one report.
    b.open(f"{base}/drift")
    check("Model churn" in b.text("main"), "drift reports about churn are listed")
    b.shot("drift")
    b.all("table.drift-reports a")[0].click()
    verdict = b.text("#verdict")
    check(verdict in {"drift", "no drift"}, verdict)
    check(len(b.all("table#drift-columns tr")) > 1, "per-column results")
    b.shot("drift-report")

    # Pipelines: the retraining DAG, cache hits and cost.
    b.open(f"{base}/pipelines")
    check("churn-retrain" in b.text("main"), "the retraining pipeline is listed")
    check(len(b.all("svg.dag rect")) >= 2, "the pipeline's steps are drawn as a graph")
    check(len(b.all("svg.dag line")) >= 1, "with their dependencies")
    b.shot("pipelines")

    b.open(f"{base}/decisions")
    check("verified" in b.text("#chain"), "the whole log verifies")
    b.shot("decisions")

    # A missing object is a page, not a 500.
    b.open(f"{base}/models/no-such-model")
    check("404" in b.text("h1"), "missing model: 404 page")


def login(b: Browser, base: str, token: str) -> None:
    b.open(f"{base}/models")
    check("/login" in b.driver.current_url, "an unauthenticated page goes to the login page")
    b.find("#token").send_keys("wrong")
    b.find("#login").click()
    check("not right" in b.text("#error"), "a wrong token is refused")
    b.find("#token").send_keys(token)
    b.find("#login").click()
    check(b.driver.current_url.endswith("/models"), f"back on the page asked for: {b.driver.current_url}")
    check("Registered models" in b.text("h1"), "logged in")
    b.shot("after-login")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mlops", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--shots", required=True)
    args = parser.parse_args()
    shots = Path(args.shots)
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    b = Browser(shots)
    try:
        with ui(args.mlops, args.store) as base:
            walk(b, base)
        with tempfile.TemporaryDirectory() as tmp:
            token_file = Path(tmp) / "token"
            token_file.write_text("ui-browser-test-token\n")
            with ui(args.mlops, args.store, "--token-file", str(token_file)) as base:
                login(b, base, "ui-browser-test-token")
    finally:
        b.quit()
    print(f"browser test passed; {b.count} screenshots in {shots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
