"""Bad input — report parameters, segments files, templates and hostile data: every parameter and file is checked
before any work (seconds, nothing loaded), and data in the report is text, never markup.

Runtime: 74 s on 2 cores alone (up to 3 min when the cores are shared); about a minute of it is the one full
`loyalty-lab run` on hostile data (a module fixture), the rest mostly the 360° view schema (~1 s) per check."""
import csv
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml
from lab_helpers import cli, make_lab
from loyalty_lab import LoyaltyLabError, load_settings
from loyalty_lab.report import check_report, html_table, md_text, run_report_list

QUICK = 15  # seconds: every check below reads no data; the view's schema alone takes about one


@pytest.fixture
def settings(lab):
    return load_settings(lab / "settings.ini", env={})


def refused(settings, parameters=None, **kwargs) -> str:
    "The message `check_report` gives (it must refuse, within seconds, and without creating the warehouse)."
    started = time.perf_counter()
    with pytest.raises(LoyaltyLabError) as e:
        check_report(settings, parameters, **kwargs)
    assert time.perf_counter() - started < QUICK
    assert not settings.warehouse.path.exists()
    return str(e.value)


# --- each parameter ---

@pytest.mark.parametrize("name, value, message", [
    ("as_of", "2024-13-01", "as_of = '2024-13-01': expected an ISO date or timestamp, e.g. 2024-06-30"),
    ("as_of", "yesterday", "as_of = 'yesterday': expected an ISO date or timestamp"),
    ("n_clusters", 0, "n_clusters = 0: expected an integer or 'auto' (>= 2 and <= 30)"),
    ("n_clusters", 1, "n_clusters = 1: expected an integer or 'auto' (>= 2 and <= 30)"),
    ("n_clusters", -2, "n_clusters = -2: expected an integer or 'auto'"),
    ("n_clusters", "many", "n_clusters = 'many': expected an integer or 'auto'"),
    ("horizon_days", -5, "horizon_days = -5: expected an integer, e.g. 365 (>= 1)"),
    ("horizon_days", "year", "horizon_days = 'year': expected an integer"),
    ("discount_rate", 2, "discount_rate = 2: expected a number, e.g. 0.1 (>= 0 and <= 1)"),
    ("discount_rate", "ten", "discount_rate = 'ten': expected a number"),
    ("segment_map", "nope", "segment map 'nope' is neither built in nor a [segment_map.nope] section of settings.ini"),
    ("include_pii", "maybe", "include_pii = 'maybe': expected true or false"),
    ("currency", "", "currency = '': expected a 3-letter ISO 4217 currency code"),
    ("compare_to", "2024-99-01", "compare_to = '2024-99-01': expected a date such as 2024-03-31"),
    ("compare_to", "2024-07-01", "compare_to = '2024-07-01' must be before as_of = 2024-06-30"),
    ("filter_by", "planet=Mars", "filter_by = 'planet=Mars': write store=<store id>, region=<city> or channel=<channel>"),
    ("filter_by", "region=", "filter_by = 'region=': write store=<store id>"),
    ("colour", "red", "report parameter(s) colour not in segment_report.ipynb's parameters cell; it takes: settings_path"),
])
def test_a_bad_parameter_fails_in_seconds_before_any_data(settings, name, value, message):
    assert message in refused(settings, {name: value})


@pytest.mark.parametrize("run_id", ["../escape", "_failed", "two words", ".hidden"])
def test_a_run_id_that_cannot_name_a_folder_is_refused(settings, run_id):
    assert f"run id {run_id!r}: use letters, digits" in refused(settings, run_id=run_id)


def test_an_output_folder_under_a_file_is_refused(settings, lab):
    (lab / "taken").write_text("a file")
    message = refused(settings, {"output_dir": str(lab / "taken" / "reports")})
    assert f"report output folder {lab / 'taken' / 'reports'}: {lab / 'taken'} is a file, not a folder" in message


def test_an_output_folder_that_cannot_be_written_is_refused(settings, lab, monkeypatch):
    import tempfile
    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(tempfile, "TemporaryFile", no_space)  # root writes anywhere: a full disk stands in
    message = refused(settings, {"output_dir": str(lab / "out")})
    assert f"report output folder {lab / 'out'}: cannot write in {lab} (No space left on device)" in message


# --- the template ---

def test_a_template_without_a_kernelspec_gets_a_message_not_papermills_valueerror(settings, lab):
    import nbformat
    from loyalty_lab.report import default_template
    nb = nbformat.read(default_template(), as_version=4)
    del nb.metadata["kernelspec"]
    nbformat.write(nb, lab / "mine.ipynb")
    message = refused(settings, template=lab / "mine.ipynb")
    assert f"report template {lab / 'mine.ipynb'} names no kernel (its metadata has no kernelspec)" in message
    assert "choose a Python kernel and save it" in message


@pytest.mark.parametrize("content, message", [
    ("not json at all", "is not a readable notebook (NotJSONError"),
    ('{"cells": []}', "names no kernel (its metadata has no kernelspec)"),
])
def test_a_template_that_is_no_notebook_is_named(settings, lab, content, message):
    (lab / "mine.ipynb").write_text(content)
    assert message in refused(settings, template=lab / "mine.ipynb")


def test_a_missing_template_is_named(settings, lab):
    assert f"report template {lab / 'gone.ipynb'} not found" in refused(settings, template=lab / "gone.ipynb")


# --- the segments file: its shape, every construct, every column ---

def segments(lab, text) -> dict:
    (lab / "seg.yaml").write_text(text, encoding="utf-8")
    return {"segments_file": str(lab / "seg.yaml")}


def one(where: str, name: str = "Mine") -> str:
    return yaml.safe_dump({"segments": [{"name": name, "where": where}]})


@pytest.mark.parametrize("where, message", [
    ("agee >= 60", "segment 'Mine': no column 'agee' (did you mean 'age'"),
    ("cvl > 1000", "segment 'Mine': no column 'cvl' (did you mean 'clv'"),  # a column the report adds
    ("segmnt == 'Champions'", "no column 'segmnt' (did you mean 'segment'"),
    ("basket > 5000", "no column 'basket'; the columns are: customer_id, first_name"),
    ("__import__('os').system('id')", "`__import__('os').system('id')` is not allowed in a condition"),
    ("age + 1 > 30", "`age + 1` is not allowed in a condition"),
    ("len(city) > 3", "`len(city)` is not allowed in a condition"),
    ("city.upper() == 'X'", "`city.upper()` is not allowed in a condition"),
    ("(lambda: 1)() == 1", "is not allowed in a condition"),
    ("age if age else 0", "is not allowed in a condition"),
    ("city in 'Novi Sad'", "after `in`, a list such as ['a', 'b'] is needed"),
    ("1 < 2", "a comparison of two constants"),
    ("age >", "cannot read 'age >'"),
    ("age == 'old'", "compares values of different kinds"),
    ("not " * 5000 + "age > 3", "nested too deeply"),
    ("city", "the expression `city` is not allowed in a condition"),  # only a true/false column stands alone
    ("5", "the expression `5` is not allowed in a condition"),
])
def test_a_bad_condition_is_refused_before_any_data_naming_file_and_segment(settings, lab, where, message):
    text = refused(settings, segments(lab, one(where)))
    assert text.startswith(f"segment definitions {lab / 'seg.yaml'}: segment 'Mine': ") or "nested" in text, text
    assert message in text


@pytest.mark.parametrize("content, message", [
    ("segments: []\n", "segments"),
    ("segments:\n  - name: A\n", "segment 1 needs a name and a where condition"),
    ("segments:\n  - {name: A, where: age > 3}\n  - {name: A, where: age > 4}\n", "the name 'A' is used twice"),
    ("segments:\n  - {name: A, where: age > 3, colour: red}\n", "unknown key(s) colour; keys are name, where, description"),
    ("segments: [\n", "seg.yaml"),
])
def test_a_segments_file_of_the_wrong_shape_is_refused(settings, lab, content, message):
    text = refused(settings, segments(lab, content))
    assert message in text and "seg.yaml" in text


def test_a_segments_file_in_another_encoding_or_a_folder_is_named(settings, lab):
    (lab / "seg.yaml").write_bytes("segments:\n  - {name: Šabac, where: city == 'Šabac'}\n".encode("cp1250"))
    assert f"segment definitions {lab / 'seg.yaml'} is not UTF-8 text (byte 0x8a at position 21); save it as UTF-8" \
        in refused(settings, {"segments_file": str(lab / "seg.yaml")})
    (lab / "folder.yaml").mkdir()
    assert f"segment definitions {lab / 'folder.yaml'} cannot be read: Is a directory" \
        in refused(settings, {"segments_file": str(lab / "folder.yaml")})


def test_a_missing_segments_file_is_refused_at_once(settings, lab):
    started = time.perf_counter()
    assert "does not exist" in refused(settings, {"segments_file": str(lab / "nope.yaml")})
    assert time.perf_counter() - started < 2  # no schema is built for a file that is not there


def test_a_good_segments_file_passes_with_the_reports_own_columns(settings, lab):
    import shutil
    from lab_helpers import REPO
    shutil.copy(REPO / "segments.yaml", lab / "segments.yaml")
    runs = check_report(settings, {"segments_file": str(lab / "segments.yaml"), "n_clusters": 3})
    assert len(runs) == 1 and runs[0].settings.report.n_clusters == 3
    assert not settings.warehouse.path.exists()


# --- run lists and the command line: checked before the first run, before ingest ---

def test_a_run_list_checks_every_run_before_running_the_first(settings, lab):
    (lab / "runs.yaml").write_text("runs:\n  - {run_id: web, filter_by: channel=web}\n"
                                   "  - {run_id: bad, n_clusters: 0}\n")
    with pytest.raises(LoyaltyLabError, match=r"run list .*runs.yaml, run 'bad': .*n_clusters = 0"):
        run_report_list(lab / "runs.yaml", settings)  # not "no warehouse" of the first run
    assert not (lab / "reports").exists()


@pytest.mark.parametrize("args, message", [
    (("-p", "n_clusters", "0"), "n_clusters = 0: expected an integer or 'auto'"),
    (("-p", "as_of", "2024-13-01"), "as_of = '2024-13-01': expected an ISO date"),
    (("--segments",), "segment 'Older': no column 'agee' (did you mean 'age'"),
    (("--runs", "runs.yaml"), "run list"),
])
def test_loyalty_lab_run_fails_in_seconds_before_ingest(lab, args, message):
    if args == ("--segments",):
        settings = lab / "settings.ini"
        settings.write_text(settings.read_text().replace("[report]\n", "[report]\nsegments_file = seg.yaml\n"))
        (lab / "seg.yaml").write_text(one("agee >= 60", "Older"))
        args = ()
    (lab / "runs.yaml").write_text("runs:\n  - {run_id: ok}\n  - {run_id: bad, discount_rate: ten}\n")
    started = time.perf_counter()
    done = cli("run", *args, cwd=lab)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert time.perf_counter() - started < 30  # was 60-150 s: after the load and the merge
    assert not (lab / "data" / "warehouse.duckdb").exists()
    assert "rows" not in done.stdout  # no load report: nothing was ingested


# --- escaping helpers ---

HOSTILE = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>", '"><svg onload=alert(3)>', "$x^2$ $\\frac{$",
           "[link](javascript:alert(4))"]


RFM_NAMES = ["<img src=x onerror=alert(6)> VIP", "$y^2$ $\\frac{$ Recent", '"><svg onload=alert(7)> Lapsed']


class Elements(HTMLParser):
    "Every element and attribute of an HTML page, and the text of its scripts."
    def __init__(self, html: str):
        super().__init__()
        self.elements, self.scripts, self._in_script = [], [], False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)

    def handle_endtag(self, tag):
        self._in_script = False


def live_markup(html: str) -> list:
    "Elements, attributes or scripts that came from the hostile strings."
    page = Elements(html)
    found = [(t, a) for t, a in page.elements if t == "svg" or any(k.startswith("on") for k in a)
             or (t == "img" and not a.get("src", "").startswith("data:image/png;base64,"))  # nbconvert's charts
             or str(a.get("href", "")).startswith("javascript")]
    return found + [s for s in page.scripts if "alert(" in s]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_html_table_escapes_cells_labels_and_formatted_columns(hostile):
    frame = pd.DataFrame({"name": [hostile], "revenue": [1234.5]}, index=pd.Index([hostile], name=hostile))
    frame.columns.name = hostile
    page = html_table(frame, {"name": str.upper, "revenue": "{:,.0f}"}, left=["name"]).to_html()
    assert not live_markup(page) and "1,234" in page


@pytest.mark.parametrize("hostile", HOSTILE)
def test_md_text_shows_markdown_and_html_as_written(hostile):
    from nbconvert.filters.markdown import markdown2html
    rendered = markdown2html(f"Segment **{md_text(hostile)}** and more")
    assert not live_markup(rendered)
    assert [t for t, _ in Elements(rendered).elements] == ["p", "strong"]
    import html
    assert html.unescape(re.sub(r"<[^>]+>", "", rendered)).strip() == f"Segment {hostile} and more"


# --- a whole report on hostile data ---

def rewrite(path: Path, change):
    "Apply `change(rows)` to a sample CSV's rows (dicts of text) and write it back."
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows, fields = list(reader), reader.fieldnames
    change(rows)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    "`loyalty-lab run` on the sample with a hostile string in every free-text column and segment name."
    lab = make_lab(tmp_path_factory.mktemp("hostile"))
    data = lab / "data" / "sample"
    pick = lambda i: HOSTILE[i % len(HOSTILE)]
    categories: dict[str, str] = {}
    def category(c):
        return categories.setdefault(c, f"{pick(len(categories))} {c}") if c else c
    def orders(rows):
        for r in rows:
            r["category"], r["store_id"], r["product_id"] = category(r["category"]), pick(1) + r["store_id"], pick(2) + r["product_id"]
    def profiles(rows):
        for i, r in enumerate(rows):
            r["first_name"] = f"Piiname{i}{pick(i)}"
            r["last_name"] = f"Piisurname{i}"
            r["city"], r["address"] = (f"{pick(i)} {r['city']}" if r["city"] else ""), pick(i + 1)
        rows.append({**rows[0], "source_customer_id": "X9", "birth_date": "leaked.person@example.com"})
    def events(rows):
        for r in rows:
            r["category"] = category(r["category"])
            r["campaign_id"] = pick(3) + r["campaign_id"] if r["campaign_id"] else ""
    def ledger(rows):
        for r in rows:
            r["reward"] = pick(0) + r["reward"] if r["reward"] else ""
    def offers(rows):
        for r in rows:
            r["campaign_id"] = pick(3) + r["campaign_id"]
    for name, change in [("order_lines", orders), ("profiles", profiles), ("interactions", events),
                         ("loyalty_ledger", ledger), ("offers", offers)]:
        rewrite(data / f"{name}.csv", change)
    baby = next(v for k, v in categories.items() if k == "baby")
    (lab / "seg.yaml").write_text(yaml.safe_dump({"segments": [
        {"name": HOSTILE[0], "description": HOSTILE[1], "where": "age >= 30"},
        {"name": HOSTILE[2], "description": HOSTILE[4], "where": f"top_category == {baby!r}"},
        {"name": HOSTILE[3], "description": HOSTILE[3], "where": "city == 'nowhere'"},  # empty: named in a note
        {"name": HOSTILE[4], "where": f"segment in [{RFM_NAMES[0]!r}] or clv > 1000"}]}, allow_unicode=True), encoding="utf-8")
    settings = lab / "settings.ini"
    settings.write_text(settings.read_text().replace("[report]\n", "[report]\nsegments_file = seg.yaml\n")
                        + "[rfm]\nsegment_map = hostile\n[segment_map.hostile]\n"  # RFM segment names: tables and charts
                        + f"1 = {RFM_NAMES[0]} | R 4-5, FM 4-5 | {HOSTILE[1]} | {HOSTILE[4]}\n"
                        + f"2 = {RFM_NAMES[1]} | R 3-5 | bought lately | {HOSTILE[0]}\n"
                        + f"3 = {RFM_NAMES[2]} | R 1-2 | gone | win back\n")
    done = cli("run", "--run-id", "hostile", "-p", "title", HOSTILE[0] + " Title", cwd=lab, timeout=900)
    assert done.returncode == 0, done.stderr
    return lab, (lab / "reports" / "hostile" / "segment_report.html").read_text(encoding="utf-8"), categories


def test_a_report_on_hostile_data_has_no_live_markup_from_it(hostile_report):
    _, html, _ = hostile_report
    assert not live_markup(html)


def test_the_hostile_values_are_in_the_report_as_text(hostile_report):
    "The check above is not vacuous: segment names, descriptions and categories reached the page, escaped."
    import html as html_module
    _, page, categories = hostile_report
    text = html_module.unescape(re.sub(r"<[^>]+>", " ", page))
    for shown in [*HOSTILE, *RFM_NAMES, HOSTILE[0] + " Title"]:
        assert shown in text, shown
    assert sum(f"{category} (" in text for category in categories.values()) >= 3  # the affinity table


def test_a_report_without_include_pii_shows_no_personal_data(hostile_report):
    _, page, _ = hostile_report
    assert "Piiname" not in page and "Piisurname" not in page
    assert "leaked.person" not in page and "example.com" not in page  # the shifted e-mail in birth_date is masked


def test_the_columns_checked_up_front_are_the_columns_the_report_evaluates_segments_on(hostile_report):
    "`segment_columns` (view schema + REPORT_COLUMNS) is what the run's exported view holds (keyed, without PII)."
    from loyalty_lab.report import segment_columns
    from loyalty_lab.view360 import private_columns
    lab, _, _ = hostile_report
    exported = pd.read_parquet(lab / "reports" / "hostile" / "customer_360.parquet")
    checked = list(segment_columns(load_settings(lab / "settings.ini", env={})))
    expected = [c for c in checked if c != "customer_id" and c not in private_columns(checked)]
    assert sorted(set(exported.columns) - {"customer_key"}) == sorted(expected)


def test_a_dollar_in_a_treemap_label_is_a_dollar_not_maths(tmp_path):
    "matplotlib's own wrap=True reads `$…$` as maths whatever text.parse_math says; the treemap wraps by itself."
    import matplotlib
    matplotlib.use("Agg")
    from loyalty_lab.report import plot_treemap
    sizes = pd.Series([5, 3, 2], index=["$y^2$ $\\frac{$ Recent, a long segment name", "b", "c"])
    figure = plot_treemap(sizes, sizes.index.to_series() + "\n45% of customers")
    figure.savefig(tmp_path / "treemap.png")  # mathtext would raise ValueError: Expected \frac{num}{den}
    assert any("$\\frac{$" in t.get_text() for t in figure.axes[0].texts)
