#!/usr/bin/env python3
"""The web view in a real browser: headless Chromium (Debian's chromium and
chromium-driver) driven through WebDriver with Selenium, against a listener
that tests/web_ui.rs started. One scenario per run; exits non-zero with the
reason on the first check that fails.

  ui_check.py demo URL [--screenshot PNG]   the demo graph from graph files
  ui_check.py token URL TOKEN               a listener with a token
  ui_check.py live URL                      a replay served while it runs
"""

import json
import os
import sys
import time
from urllib.parse import urlsplit

os.environ.setdefault("SE_OFFLINE", "true")  # never ask the network for drivers

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

DEMO_GROUPS = {
    "analytics/DaemonSet/telegraf",
    "analytics/StatefulSet/influxdb",
    "api.partner.example",
    "kube-system/Deployment/coredns",
    "shop/Deployment/checkout",
    "shop/Deployment/frontend",
    "shop/StatefulSet/postgres",
}
VIOLATION = "shop/Deployment/frontend\u2192shop/StatefulSet/postgres"
RED = "rgb(211,47,47)"


def fail(message):
    print(f"ui_check: {message}", file=sys.stderr)
    sys.exit(1)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,900",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-default-apps",
                     "--disable-sync", "--disable-features=Translate,OptimizationHints,MediaRouter"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait(driver, what, check, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    console = driver.get_log("browser")
    fail(f"timed out waiting for {what}; console: {console}")


def drawn(driver):
    return driver.execute_script(
        "return typeof cy === 'object' && cy ? "
        "{nodes: cy.nodes().map(n => n.id()).sort(),"
        " edges: cy.edges().map(e => [e.id(), e.data('verdict'), e.style('line-color')])} : null")


def check_quiet(driver, origin):
    """No console error, and no request outside the listener."""
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    if errors:
        fail(f"console errors: {errors}")
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.requestWillBeSent":
            continue
        url = message["params"]["request"]["url"]
        parts = urlsplit(url)
        if parts.scheme == "data":
            continue
        if f"{parts.scheme}://{parts.netloc}" != origin:
            fail(f"a request outside the listener: {url}")


def click_edge(driver, edge_id):
    point = driver.execute_script(
        "const p = cy.getElementById(arguments[0]).renderedMidpoint(); return [p.x, p.y];", edge_id)
    graph = driver.find_element(By.ID, "graph")
    size = graph.size
    ActionChains(driver).move_to_element_with_offset(
        graph, int(point[0] - size["width"] / 2), int(point[1] - size["height"] / 2)).click().perform()


def demo(url, screenshot=None):
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    driver = browser()
    try:
        driver.get(url)
        seen = wait(driver, "the demo graph", lambda: (d := drawn(driver)) and len(d["nodes"]) == 7 and d)
        if set(seen["nodes"]) != DEMO_GROUPS:
            fail(f"groups drawn: {seen['nodes']}")
        violations = [e for e in seen["edges"] if e[1] == "violation"]
        if [v[0] for v in violations] != [VIOLATION] or violations[0][2] != RED:
            fail(f"the violation edge: {violations}")
        if len(seen["edges"]) != 8:
            fail(f"edges drawn: {seen['edges']}")
        # The layout has settled before the click.
        time.sleep(1)
        click_edge(driver, VIOLATION)
        title = wait(driver, "the edge's details", lambda: driver.find_element(By.CSS_SELECTOR, "#details h2").text)
        details = driver.find_element(By.ID, "details").text
        for wanted in ("shop/Deployment/frontend \u2192 shop/StatefulSet/postgres", "violation",
                       "5432/tcp", "shop/postgres-ingress", "postgresql", "first seen"):
            if wanted not in details:
                fail(f"{wanted!r} not in the details: {title!r} {details!r}")
        if screenshot:
            driver.save_screenshot(screenshot)
        Select(driver.find_element(By.ID, "namespace")).select_by_value("analytics")
        shown = wait(driver, "the namespace filter",
                     lambda: (d := drawn(driver)) and len(d["nodes"]) < 7 and d)
        if set(shown["nodes"]) != {"analytics/DaemonSet/telegraf", "analytics/StatefulSet/influxdb",
                                   "kube-system/Deployment/coredns"}:
            fail(f"with namespace analytics: {shown['nodes']}")
        Select(driver.find_element(By.ID, "namespace")).select_by_value("")
        search = driver.find_element(By.ID, "search")
        search.send_keys("partner")
        shown = wait(driver, "the search", lambda: (d := drawn(driver)) and len(d["nodes"]) == 2 and d)
        if set(shown["nodes"]) != {"shop/Deployment/frontend", "api.partner.example"}:
            fail(f"searching partner: {shown['nodes']}")
        check_quiet(driver, origin)
        if driver.find_element(By.ID, "source").text != "graph files":
            fail(f"source badge: {driver.find_element(By.ID, 'source').text!r}")
    finally:
        driver.quit()


def token(url, secret):
    driver = browser()
    try:
        driver.get(url)
        form = wait(driver, "the token form", lambda: (f := driver.find_element(By.ID, "token-form")).is_displayed() and f)
        if drawn(driver)["nodes"]:
            fail("a graph drawn without the token")
        driver.find_element(By.ID, "token").send_keys(secret)
        form.find_element(By.TAG_NAME, "button").click()
        wait(driver, "the graph after the token", lambda: (d := drawn(driver)) and len(d["nodes"]) == 7)
        # The 401 before the token is the one error the console may show.
        errors = [e for e in driver.get_log("browser")
                  if e["level"] == "SEVERE" and "401" not in e["message"]]
        if errors:
            fail(f"console errors: {errors}")
    finally:
        driver.quit()


def live(url):
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    driver = browser()
    try:
        driver.get(url)
        wait(driver, "the live badge", lambda: driver.find_element(By.ID, "source").text == "live")
        counts = []

        def grown():
            seen = drawn(driver)
            counts.append(len(seen["edges"]))
            return len(seen["edges"]) == 8 and any(e[1] == "violation" for e in seen["edges"])

        wait(driver, "the replay's edges", grown, timeout=60)
        if min(counts) >= 8:
            fail(f"the graph did not grow while the replay ran: {counts[:20]}")
        recent = driver.find_elements(By.CSS_SELECTOR, "#recent li")
        if not recent or not any("violation" in li.text for li in recent):
            fail(f"recent records: {[li.text for li in recent]}")
        check_quiet(driver, origin)
    finally:
        driver.quit()


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    scenario, url = sys.argv[1], sys.argv[2]
    if scenario == "demo":
        screenshot = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--screenshot" else None
        demo(url, screenshot)
    elif scenario == "token":
        token(url, sys.argv[3])
    elif scenario == "live":
        live(url)
    else:
        fail(__doc__)
    print(f"ui_check: {scenario}: ok")


if __name__ == "__main__":
    main()
