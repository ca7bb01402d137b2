"""Helpers the tests share: a throw-away lab on the sample data, an own copy of the report template, the command line."""
from pathlib import Path
import shutil
import subprocess
import sys

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
CLI = str(Path(sys.executable).parent / "loyalty-lab")


def make_lab(root: Path) -> Path:
    """A throw-away lab folder: settings.ini pointing at copies of the sample data and its own warehouse (the
    report runs on the template inside the installed package)."""
    shutil.copytree(SAMPLE, root / "data" / "sample")
    (root / "settings.ini").write_text(
        "[warehouse]\npath = data/warehouse.duckdb\nlock_timeout_seconds = 0.5\n"
        "[run]\nas_of = 2024-06-30\n[report]\noutput_dir = reports\n", encoding="utf-8")
    return root


def merged_lab(root: Path):
    "`make_lab` with its sources loaded into the warehouse and the profiles merged; returns the lab's settings."
    from loyalty_lab import ingest_sources, load_settings, resolve_customers
    make_lab(root)
    settings = load_settings(root / "settings.ini", env={})
    ingest_sources(settings)
    resolve_customers(settings=settings)
    return settings


def copy_template(root: Path) -> Path:
    "The installed package's report template copied into the lab as the analyst's own (`[report] template`)."
    from loyalty_lab.report import default_template
    own = root / "my_report.ipynb"
    shutil.copy(default_template(), own)
    settings = root / "settings.ini"
    settings.write_text(settings.read_text().replace("[report]\n", "[report]\ntemplate = my_report.ipynb\n"))
    return own


def cli(*args, cwd, timeout=600):
    "Run the installed `loyalty-lab` command in `cwd`."
    return subprocess.run([CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


# what a reader must never see in a report: internals, missing values, Python's messages
UNFIT_TEXT = r"Traceback|Warning|\bnan\b|\bNone\b|\bNaN\b|\bNaT\b|\binf\b"

_PROBE = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images];
  const wide = [...document.querySelectorAll('.jp-OutputArea-output, table, img')]
    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1
                 || e.scrollWidth > e.clientWidth + 1)
    .map(e => e.tagName + ': ' + e.innerText.slice(0, 80));
  const out = document.createElement('pre'); out.id = 'render-check';
  out.textContent = JSON.stringify({images: imgs.length,
    broken: imgs.filter(i => !i.complete || i.naturalWidth === 0).length,
    height: document.documentElement.scrollHeight, width: document.documentElement.scrollWidth,
    tables: document.querySelectorAll('table').length, title: document.title, overflowing: wide,
    text: document.body.innerText});
  document.body.appendChild(out); });</script>"""


SCREENSHOTS = REPO / "build" / "screenshots"  # where the render tests leave what they saw, to be looked at


def render_report(html_file: Path, screenshot: Path, width: int = 1280) -> dict:
    """Open a report in headless Chromium: its facts (images, broken ones, page size, tables, <title>, elements wider
    than the page or than their box, the visible text) and a full-page screenshot."""
    import json
    import re
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise AssertionError("Chromium is needed to check the report renders: `make test` installs it "
                             "(apt-get install chromium)")
    page = screenshot.with_suffix(".probe.html")
    page.write_text(html_file.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},900",
             f"--user-data-dir={screenshot.parent / '.chromium'}"]
    dom = subprocess.run([browser, *flags, "--virtual-time-budget=15000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=180).stdout
    found = re.search(r'<pre id="render-check">(.*?)</pre>', dom, flags=re.S)
    assert found, "the page did not finish loading in Chromium"
    import html as html_module
    facts = json.loads(html_module.unescape(found.group(1)))
    flags[4] = f"--window-size={width},{facts['height']}"
    subprocess.run([browser, *flags, f"--screenshot={screenshot}", html_file.as_uri()], capture_output=True, timeout=180)
    page.unlink()
    return facts


def check_rendering(html_file: Path, name: str) -> dict:
    """Render a report into SCREENSHOTS/<name>.png and check what a reader sees: no Python internals or missing values
    in the visible text, every image loads, nothing wider than the page, the browser tab named by the report's title."""
    import re
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    facts = render_report(html_file, SCREENSHOTS / f"{name}.png")
    unfit = [facts["text"][max(0, m.start() - 60):m.end() + 30] for m in re.finditer(UNFIT_TEXT, facts["text"])]
    assert not unfit, unfit
    assert facts["images"] > 0 and facts["broken"] == 0, facts
    assert facts["width"] <= 1280 and not facts["overflowing"], facts["overflowing"]
    assert (SCREENSHOTS / f"{name}.png").stat().st_size > 100_000  # a real page, not a blank one
    return facts
