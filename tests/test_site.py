"""The static zoo site (learnit_tf/zoo/site.py, `learnit-zoo site`): checked for broken
links in Python, then opened in headless Chromium (DevTools protocol over a pipe, no
extra package): no console error, every image loads, every link resolves, filtering and
sorting work, and the screenshots have the expected layout (not blank)."""
import base64
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
from PIL import Image

from learnit_tf import zoo
from learnit_tf.core.output_dir import OutputDirExistsError
from learnit_tf.zoo import card, site

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "scripts")
VIEWPORT = (1280, 900)
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
NO_CHROMIUM = ("no Chromium on this machine (apt-get install chromium, as .ci/run does); "
               "the Python link check still ran")


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "zoo_site"
    the_zoo = zoo.Zoo(os.path.join(REPO, "zoo", "index.json"), progress=False)
    site.build_site(the_zoo, str(out))
    return str(out)


def _shipped_rows():
    return zoo.Zoo(os.path.join(REPO, "zoo", "index.json"), progress=False).list()


def test_site_has_a_page_per_version_and_no_broken_link(site_dir):
    rows = _shipped_rows()
    for row in rows:
        page = os.path.join(site_dir, row["name"], row["version"], "index.html")
        text = open(page, encoding="utf-8").read()
        assert f"{row['name']}@{row['version']}" in text
        assert "sha256" in text and "<table>" in text
    index = open(os.path.join(site_dir, "index.html"), encoding="utf-8").read()
    assert index.count("<tr><td>") == len(rows)
    assert site.broken_links(site_dir) == []
    assert "http://" not in index and "https://" not in index  # nothing to fetch


def test_link_check_reports_a_missing_picture_and_an_outside_link(site_dir, tmp_path):
    copy = str(tmp_path / "copy")
    shutil.copytree(site_dir, copy)
    os.remove(os.path.join(copy, "text_siren", "4", card.CURVE_FILE))
    with open(os.path.join(copy, "index.html"), "a", encoding="utf-8") as f:
        f.write('<a href="https://example.com/x">x</a>')
    broken = site.broken_links(copy)
    assert ("text_siren/4/index.html", card.CURVE_FILE) in broken
    assert ("index.html", "https://example.com/x") in broken
    assert ("index.html", "text_siren/4/curve.png") not in broken  # the index shows recons


def test_site_numbers_are_the_cards(site_dir):
    """The index row of each version shows its card's headline cells."""
    index = open(os.path.join(site_dir, "index.html"), encoding="utf-8").read()
    the_zoo = zoo.Zoo(os.path.join(REPO, "zoo", "index.json"), progress=False)
    for row in _shipped_rows():
        record = card.read_version(the_zoo, row["name"], row["version"])
        cells = card.card_facts(record)["cells"]
        card_text = open(os.path.join(record.directory, "README.md"), encoding="utf-8").read()
        assert f"**{cells['metric']} at {cells['at']}: {cells['meta']} (this init)" in card_text
        link = f'<a href="{row["name"]}/{row["version"]}/index.html">'
        line = next(l for l in index.splitlines() if link in l and "<img" not in l.split(link)[0])
        assert f'<td data-value="{cells["meta"]}">{cells["meta"]}</td>' in line
        assert f'<td data-value="{cells["standard"]}">{cells["standard"]}</td>' in line


def test_site_command_refuses_a_folder_with_files_and_keeps_them(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    the_zoo = zoo.Zoo(os.path.join(REPO, "zoo", "index.json"), progress=False)
    with pytest.raises(OutputDirExistsError, match="notes.txt"):
        site.build_site(the_zoo, str(out))
    site.build_site(the_zoo, str(out), overwrite=True)
    assert (out / "notes.txt").read_text() == "mine" and (out / "index.html").is_file()
    result = subprocess.run([sys.executable, os.path.join(SCRIPTS, "zoo.py"), "site",
                             f"--output_dir={tmp_path / 'cli'}"], capture_output=True,
                            text=True, timeout=300, check=False,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "cli" / "index.html").is_file()
    assert "index.html" in result.stdout


# ------------------------------------------------------------- Chromium (DevTools pipe)


class Browser:
    """Headless Chromium driven through the DevTools protocol on fds 3/4
    (--remote-debugging-pipe: JSON messages ended by a NUL byte)."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()

        # Runs in the child before it closes the fds not in pass_fds (3 and 4 are kept):
        # its fd 3 reads the commands, fd 4 writes the replies.
        def wire():
            high_in, high_out = os.dup(to_child), os.dup(from_child)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--hide-scrollbars", "--remote-debugging-pipe",
             f"--user-data-dir={self.profile}", f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
             "about:blank"], pass_fds=(3, 4, to_child, from_child), preexec_fn=wire,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._id = 0
        self.events = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(method, session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=VIEWPORT[0],
                  height=VIEWPORT[1], deviceScaleFactor=1, mobile=False)

    def _message(self, deadline):
        while b"\0" not in self._buffer:
            if time.time() > deadline:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method, session=False, timeout=60, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method, timeout=60):
        deadline = time.time() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._message(deadline))

    def open(self, path):
        """Loads a file; returns the console errors, exceptions and error log entries."""
        self.events = []
        self.call("Page.navigate", session=True, url="file://" + urllib.request.pathname2url(path))
        self.wait_for("Page.loadEventFired")
        self.evaluate("new Promise(r => setTimeout(r, 200))")  # late console messages
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error",
                                                                              "assert"):
                errors.append(params)
            elif method == "Runtime.exceptionThrown":
                errors.append(params)
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(params["entry"])
        return errors

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", session=True, expression=expression,
                           returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def screenshot(self):
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except Exception:  # pylint: disable=broad-except  # closing anyway
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._read)
        os.close(self._write)
        shutil.rmtree(self.profile, ignore_errors=True)


PAGE_FACTS = """(() => ({
  images: Array.from(document.images).map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0,
                                                 width: i.getBoundingClientRect().width})),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  stylesheet: getComputedStyle(document.querySelector('nav')).backgroundColor,
  navBottom: document.querySelector('nav').getBoundingClientRect().bottom,
  h1Top: document.querySelector('h1').getBoundingClientRect().top,
  h1: document.querySelector('h1').textContent,
  rows: document.querySelectorAll('#zoo tbody tr').length,
}))()"""


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    chromium = Browser()
    yield chromium
    chromium.close()


def _check_page(browser, path):
    errors = browser.open(path)
    assert errors == [], (path, errors)
    facts = browser.evaluate(PAGE_FACTS)
    assert facts["images"], path
    for image in facts["images"]:
        assert image["ok"], (path, image)
    for link in facts["links"]:
        target = urllib.parse.urlparse(link)
        assert target.scheme == "file", (path, link)
        assert os.path.isfile(urllib.request.url2pathname(target.path)), (path, link)
    assert facts["stylesheet"] == "rgb(36, 41, 47)", facts  # style.css was applied
    assert facts["h1Top"] > facts["navBottom"] > 0, facts  # the title below the bar
    return facts


def _not_blank(image):
    pixels = np.asarray(image.convert("L"), np.float32)
    assert image.size == VIEWPORT, image.size
    assert pixels.std() > 20, pixels.std()
    return pixels


def test_every_page_renders_in_chromium(site_dir, browser):
    pages = [os.path.join(site_dir, "index.html")] + [
        os.path.join(site_dir, r["name"], r["version"], "index.html") for r in _shipped_rows()]
    for page in pages:
        _check_page(browser, page)


def test_index_layout_filter_and_sort_in_chromium(site_dir, browser, request):
    rows = _shipped_rows()
    facts = _check_page(browser, os.path.join(site_dir, "index.html"))
    assert facts["rows"] == len(rows)
    thumbs = [i for i in facts["images"] if "/" in i["src"]]
    assert len(thumbs) == len(rows) and all(i["width"] == 120 for i in thumbs), thumbs
    shot = browser.screenshot()
    pixels = _not_blank(shot)
    assert pixels[:30].mean() < 80  # the dark bar across the top
    _save(request, shot, "index")
    # Filtering by a signal class keeps exactly that class's rows (all CT here).
    kinds = [card.kind_of(zoo.Zoo(os.path.join(REPO, "zoo", "index.json"),
                                  progress=False).describe(r["name"], r["version"])).name
             for r in rows]
    shown = browser.evaluate("""(() => { const f = document.getElementById('filter');
        f.value = 'shepp_logan'; f.dispatchEvent(new Event('input'));
        return Array.from(document.querySelectorAll('#zoo tbody tr'))
            .filter(r => !r.hidden).map(r => r.children[0].textContent); })()""")
    assert shown == ["ct"] * kinds.count("ct"), shown
    # Sorting by "this init" orders the rows by the number, both ways.
    values = browser.evaluate("""(() => { const f = document.getElementById('filter');
        f.value = ''; f.dispatchEvent(new Event('input'));
        const th = Array.from(document.querySelectorAll('#zoo th'))
            .find(h => h.textContent === 'this init');
        th.click(); const up = Array.from(document.querySelectorAll('#zoo tbody tr'))
            .map(r => parseFloat(r.children[6].dataset.value));
        th.click(); const down = Array.from(document.querySelectorAll('#zoo tbody tr'))
            .map(r => parseFloat(r.children[6].dataset.value));
        return [up, down]; })()""")
    up, down = values
    assert up == sorted(up) and down == sorted(up, reverse=True) and up[0] < up[-1], values


def test_card_page_layout_in_chromium(site_dir, browser, request):
    page = os.path.join(site_dir, "text_siren", "4", "index.html")
    facts = _check_page(browser, page)
    assert facts["h1"].startswith("text_siren@4")
    assert [os.path.basename(i["src"]) for i in facts["images"]] == [
        card.CURVE_FILE, card.RECONSTRUCTIONS_FILE]
    assert all(i["width"] > 300 for i in facts["images"]), facts["images"]
    shot = browser.screenshot()
    _not_blank(shot)
    _save(request, shot, "card_text_siren_4")


def _save(request, image, name):
    """Keeps a screenshot where $LEARNIT_TF_SCREENSHOTS says (for a person to look at)."""
    folder = os.environ.get("LEARNIT_TF_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        image.save(os.path.join(folder, f"{name}.png"))


def test_site_assets_are_in_the_wheel_package_data():
    """setup.py's package_data names every file of learnit_tf/zoo/site_assets (a wheel
    without style.css would render unstyled pages)."""
    import fnmatch  # pylint: disable=import-outside-toplevel
    import re  # pylint: disable=import-outside-toplevel
    setup = open(os.path.join(REPO, "setup.py"), encoding="utf-8").read()
    patterns = re.findall(r'"(zoo/site_assets/[^"]+)"', setup)
    assert patterns, "setup.py package_data does not name zoo/site_assets"
    for name in os.listdir(site.ASSETS):
        assert any(fnmatch.fnmatch(f"zoo/site_assets/{name}", p) for p in patterns), name
