"""The gate's model pages in a real Chromium (Debian's, driven by Playwright), with axe-core.

Usage: pages.py BASE_URL SCREENSHOT_DIR
Env: WEIGHTGATE_AXE_JS (axe.min.js from npm), CHROMIUM (default /usr/bin/chromium).
The store behind BASE_URL holds lab/tiny (allowed), lab/frontier (refused: no references),
lab/licensed (export licence for DE, FR, JP), lab/derived (base: lab/tiny) and evil/hostile
(markup and a right-to-left override in its model name, entity and file names).
Prints one line per check and "N passed, 0 failed"; exits 1 on the first failure.
"""

import json
import os
import sys
import urllib.request

from playwright.sync_api import sync_playwright

BASE, SHOTS = sys.argv[1], sys.argv[2]
AXE = open(os.environ["WEIGHTGATE_AXE_JS"], encoding="utf-8").read()
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAYLOAD = '<script>alert(1)</script>"onerror=alert(2) \u202eexe.txt'
HOSTILE_FILES = [
    "<script>alert(3)</script>.txt",
    '"onerror=alert(4) x.txt',
    "<img src=x onerror=alert(5)>.txt",
    "\u202etxt.exe",
]
passed = 0


def check(ok, what):
    global passed
    if not ok:
        print(f"FAIL: {what}", flush=True)
        print(f"{passed} passed, 1 failed")
        sys.exit(1)
    passed += 1
    print(f"ok: {what}", flush=True)


def http(path, headers=None):
    req = urllib.request.Request(BASE + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def decision(repo, destination):
    headers = {"CF-IPCountry": destination} if destination else {}
    status, body = http(f"/v1/decision/{repo}/main", headers)
    assert status == 200, (status, body)
    return json.loads(body)


class Visit:
    """A page in a fresh browser context that sends `destination` as the proxy would, and
    records every dialog, console error, page error and request that leaves the gate."""

    def __init__(self, browser, destination):
        headers = {"CF-IPCountry": destination} if destination else {}
        self.context = browser.new_context(extra_http_headers=headers, viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.dialogs, self.errors, self.outside = [], [], []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: r.url.startswith(BASE) or self.outside.append(r.url))

    def open(self, path):
        r = self.page.goto(BASE + path)
        return r

    def inert(self, what, status=200):
        check(not self.dialogs, f"{what}: no dialog opened ({self.dialogs})")
        # A 404 page's own status is reported in the console as a failed load; nothing else may be.
        errors = [e for e in self.errors if not (status == 404 and "status of 404" in e)]
        check(not errors, f"{what}: no console or page error ({self.errors})")
        check(not self.outside, f"{what}: nothing loaded from outside the gate ({self.outside})")
        scripts = self.page.evaluate("document.querySelectorAll('script').length")
        check(scripts == 0, f"{what}: no script element in the page")
        handlers = self.page.evaluate(
            "[...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length"
        )
        check(handlers == 0, f"{what}: no element carries an event handler attribute")

    def axe(self, what):
        # Evaluated through the DevTools protocol: the page's CSP (no script) stays in force
        # for everything the page itself does.
        self.page.evaluate(AXE + "\n;0")
        result = self.page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        check(not bad, f"{what}: no serious or critical axe-core finding {bad}")

    def shot(self, name):
        self.page.screenshot(path=os.path.join(SHOTS, name), full_page=True)

    def close(self):
        self.context.close()


def badge_matches(visit, repo, destination, what):
    want = decision(repo, destination)["allowed"]
    got = visit.page.get_attribute("#decision-heading + p .badge", "data-allowed")
    check(got == ("true" if want else "false"), f"{what}: badge says allowed={got}, the gate decides {want}")


def compute_picture_agrees(visit, what):
    claim = visit.page.query_selector("svg.compute-axis g.claim")
    check(claim is not None, f"{what}: the compute picture marks the claim")
    claim_ops, claim_x = int(claim.get_attribute("data-ops")), float(claim.get_attribute("data-x"))
    marks = visit.page.query_selector_all("svg.compute-axis g.threshold")
    check(len(marks) >= 1, f"{what}: the compute picture marks the thresholds")
    for m in marks:
        ops, x = int(m.get_attribute("data-ops")), float(m.get_attribute("data-x"))
        side = (claim_ops > ops) - (claim_ops < ops)
        drawn = (claim_x > x) - (claim_x < x)
        check(side == drawn, f"{what}: claim {claim_ops:.3e} drawn on the right side of {m.get_attribute('data-regime')} {ops:.3e}")
    return claim_ops


def main():
    os.makedirs(SHOTS, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)

        # The list of repositories, filtered by the form.
        v = Visit(browser, "DE")
        r = v.open("/")
        check(r.status == 200 and "text/html" in r.headers["content-type"], "/ is a page")
        check("script-src" not in r.headers["content-security-policy"] and "default-src 'none'" in r.headers["content-security-policy"], "/ has a CSP that allows no script")
        rows = v.page.locator("table.repos tbody tr").count()
        check(rows == 5, f"/ lists the 5 repositories ({rows})")
        v.inert("/")
        v.axe("/")
        v.shot("pages-index.png")
        v.page.fill("#q", "lab/")
        v.page.select_option("#decision", "refused")
        v.page.click("button[type=submit]")
        v.page.wait_for_load_state()
        listed = v.page.locator("table.repos tbody tr td:first-child").all_inner_texts()
        want = sorted(
            r for r in ["lab/tiny", "lab/frontier", "lab/licensed", "lab/derived"] if not decision(r, "DE")["allowed"]
        )
        check(sorted(listed) == want, f"the filter form lists the refused lab/ models {listed} == {want}")
        v.close()

        # An allowed model, for a destination, with the picture and every section.
        v = Visit(browser, "DE")
        r = v.open("/lab/tiny")
        check(r.status == 200, "/lab/tiny is a page")
        badge_matches(v, "lab/tiny", "DE", "allowed model")
        compute_picture_agrees(v, "allowed model")
        text = v.page.inner_text("main")
        for needle in ["Weightgate Test Lab Ltd", "549300WGTGATETEST087", "hf download lab/tiny --revision", "weightgate verify --hf lab/tiny@", "model.safetensors.index.json", "6 x 352 active parameters"]:
            check(needle in text, f"allowed model page shows {needle!r}")
        check(v.page.locator("#signers tbody tr").count() >= 1, "allowed model page lists the signer")
        v.inert("allowed model")
        v.axe("allowed model")
        v.shot("pages-allowed.png")
        v.close()

        # A refused model: the same words as the 451, and no claims beyond it.
        v = Visit(browser, "DE")
        v.open("/lab/frontier")
        badge_matches(v, "lab/frontier", "DE", "refused model")
        status, body = http("/lab/frontier/resolve/main/config.json", {"CF-IPCountry": "DE"})
        check(status == 451, "the refused model's download answers 451")
        said = v.page.inner_text("#refusal .refusal-message")
        check(said == json.loads(body)["error"], f"the refused page says what the 451 says: {said!r}")
        check(v.page.query_selector("#withheld") is not None and v.page.query_selector("table.references") is None, "the refused page withholds references and grants")
        # What every route shows of a refused revision (docs/threat-model.md): names, sizes and
        # why; no claim, entity, signer or digest.
        check(v.page.query_selector("svg.compute-axis g.claim") is None, "the refused page draws no claim")
        check(len(v.page.query_selector_all("svg.compute-axis g.threshold")) >= 1, "the refused page still marks the thresholds")
        check(v.page.query_selector("#entity") is None and v.page.query_selector("#who-withheld") is not None, "the refused page withholds the entity and signers")
        check(v.page.query_selector("#files code.digest") is None, "the refused page lists no file digests")
        check(v.page.locator("#files tbody tr").count() >= 1, "the refused page lists the file names")
        v.inert("refused model")
        v.axe("refused model")
        v.shot("pages-refused.png")
        v.close()

        # A licensed model refused for one destination and allowed for another, by the picker.
        v = Visit(browser, "CN")
        v.open("/lab/licensed")
        badge_matches(v, "lab/licensed", "CN", "licensed model, requester CN")
        # Keyboard only: Tab until the destination picker has the focus.
        reached = False
        for _ in range(80):
            v.page.keyboard.press("Tab")
            if v.page.evaluate("document.activeElement && document.activeElement.id") == "destination":
                reached = True
                break
        check(reached, "keyboard navigation reaches the destination picker")
        v.page.keyboard.type("DE")
        v.page.keyboard.press("Tab")
        v.page.keyboard.press("Enter")
        v.page.wait_for_url("**destination=DE**")
        picked = v.page.get_attribute("#picked .badge", "data-allowed")
        want = decision("lab/licensed", "DE")["allowed"]
        check(picked == ("true" if want else "false"), f"the picked destination DE shows the gate's decision ({picked}, {want})")
        check(v.page.locator("#regimes-picked tbody tr").count() >= 1, "the picked destination has its regime table")
        v.inert("licensed model")
        v.axe("licensed model with a picked destination")
        v.shot("pages-picked-destination.png")
        v.close()

        # A derived model: lineage links the base model the gate holds.
        v = Visit(browser, "DE")
        v.open("/lab/derived")
        badge_matches(v, "lab/derived", "DE", "derived model")
        link = v.page.get_attribute("#base-model a", "href")
        check(link is not None and link.startswith("/lab/tiny/tree/"), f"the derived model links its base ({link})")
        v.inert("derived model")
        v.axe("derived model")
        v.shot("pages-derived.png")
        v.page.click("#base-model a")
        v.page.wait_for_load_state()
        check(v.page.url.startswith(BASE + "/lab/tiny/tree/"), "the base model link opens the base's page")
        v.close()

        # Hostile strings: text, never markup; nothing runs.
        v = Visit(browser, "DE")
        v.open("/evil/hostile")
        h1 = v.page.inner_text("h1")
        check(PAYLOAD in h1, f"the hostile model name shows as text ({h1!r})")
        entity = v.page.inner_text("#entity")
        check(PAYLOAD + " Ltd" in entity, "the hostile entity shows as text")
        paths = v.page.locator("#files td.path").all_inner_texts()
        for f in HOSTILE_FILES:
            check(f in paths, f"the hostile file name {f!r} shows as text")
        isolated = v.page.evaluate(
            "[...document.querySelectorAll('bdi')].some(b => b.textContent.includes('\\u202e'))"
        )
        check(isolated, "right-to-left overrides stay inside <bdi>")
        v.inert("hostile model")
        v.axe("hostile model")
        v.shot("pages-hostile.png")
        v.close()

        # A page of another origin's making cannot run script here either: the CSP forbids it.
        v = Visit(browser, "DE")
        r = v.open("/no-such/model")
        check(r.status == 404, "an unknown repository is a 404 page")
        v.inert("not found", status=404)
        v.close()
        browser.close()
    print(f"{passed} passed, 0 failed")


main()
