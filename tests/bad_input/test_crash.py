"""Bad input — crash: `kill -9` of a load, a merge, a whole run and a report at several points. Afterwards the warehouse
holds the previous load (loads and merges are one transaction), the last good report is still there (`swap_in` renames
it aside and a killed run's next start puts it back), the next run succeeds, and the scratch folders of the killed
process (`loyalty-lab-<pid>-…` in the temp folder: a load's, Splink's spill, the storage probe; `reports/.tmp-<pid>-…`)
are removed by the next start. Each test kills the whole process group (the report's kernel too), like a lost machine.

The report runs on a two-cell template of the lab's own (its parameters, then a cell that can wait for the kill)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from lab_helpers import CLI, make_lab
from loyalty_lab import Warehouse

pytestmark = pytest.mark.slow

TABLES = ("order_lines", "profiles", "interactions", "loyalty_ledger", "offers")


def tiny_template(root: Path) -> Path:
    "The package's parameters cell, then one cell that marks the kernel's start and sleeps for $LL_TEST_SLEEP s."
    import nbformat
    from loyalty_lab.report import default_template
    nb = nbformat.read(default_template(), as_version=4)
    parameters = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    wait = nbformat.v4.new_code_cell(textwrap.dedent("""\
        import os, pathlib, time
        pathlib.Path(os.environ.get("LL_TEST_MARK", "started")).touch()
        time.sleep(float(os.environ.get("LL_TEST_SLEEP", "0")))
        print("report body")"""))
    nb.cells = [parameters, wait]
    nbformat.write(nb, root / "tiny.ipynb")
    ini = root / "settings.ini"
    ini.write_text(ini.read_text().replace("[report]\n", "[report]\ntemplate = tiny.ipynb\n"))
    return root / "tiny.ipynb"


@pytest.fixture(scope="module")
def good_lab(tmp_path_factory):
    "A lab after one good `run` (report folder `good`), to be copied by each test."
    root = make_lab(tmp_path_factory.mktemp("good") / "lab")
    tiny_template(root)
    out = command(root, tmp_path_factory.mktemp("tmp"), "run", "--run-id", "good")
    assert out.returncode == 0, out.stderr
    return root


@pytest.fixture
def lab(good_lab, tmp_path):
    root = tmp_path / "lab"
    shutil.copytree(good_lab, root)
    scratch = tmp_path / "tmp"  # the lab's own temp folder (TMPDIR), so what is left behind can be listed
    scratch.mkdir()
    return root, scratch


def environment(scratch: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_LAB_")}
    return {**env, "TMPDIR": str(scratch), **extra}


def command(root, scratch, *args, **env):
    return subprocess.run([CLI, *args], cwd=root, env=environment(scratch, **env), capture_output=True, text=True,
                          timeout=600)


def kill_when(root, scratch, args, ready, after=0.0, **env):
    """Start `loyalty-lab <args>`, wait until `ready(pid)` holds (and `after` seconds more), kill -9 its process group."""
    proc = subprocess.Popen([CLI, *args], cwd=root, env=environment(scratch, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not ready(proc.pid):
        if proc.poll() is not None:
            pytest.fail(f"`loyalty-lab {' '.join(args)}` ended before the kill point: {proc.communicate()}")
        assert time.monotonic() < deadline, "kill point not reached in 300 s"
        time.sleep(0.01)
    time.sleep(after)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "it finished before the kill: the kill point is too late"
    return proc.pid


def counts(root) -> dict:
    with Warehouse(root / "data" / "warehouse.duckdb", read_only=True) as wh:
        tables = set(wh.con.list_tables())
        found = {t: wh.table(t).count().to_pyarrow().as_py() for t in TABLES}
        for t in ("crosswalk", "merge_runs", "_loads"):
            if t in tables:
                found[t] = wh.con.table(t).count().to_pyarrow().as_py()
        return found


def leftovers(root, scratch) -> list[str]:
    return sorted([p.name for p in scratch.glob("loyalty-lab-*")] +
                  [p.name for p in (root / "reports").glob(".*") if p.name != "_failed"])


def more_orders(root, n=3) -> int:
    "Append `n` new order lines (copies of the last with new order ids) to the sample's order file."
    f = root / "data" / "sample" / "order_lines.csv"
    last = f.read_text().rstrip("\n").rsplit("\n", 1)[1]
    f.write_text(f.read_text() + "".join(f'"X{i}",' + last.split(",", 1)[1] + "\n" for i in range(n)))
    return n


def more_profiles(root, n=2) -> int:
    "Append `n` new profiles (copies of the last with new ids) to the sample's profile file: work for the merge."
    import csv
    f = root / "data" / "sample" / "profiles.csv"
    with f.open(newline="", encoding="utf-8") as h:
        rows = list(csv.DictReader(h))
    with f.open("a", newline="", encoding="utf-8") as h:
        writer = csv.DictWriter(h, fieldnames=list(rows[0]), quoting=csv.QUOTE_ALL, lineterminator="\n")
        for i in range(n):
            writer.writerow({**rows[-1 - i], "source_customer_id": f"NEW{i}"})
    return n


def scratch_of(scratch, kind=""):
    return lambda pid: any(scratch.glob(f"loyalty-lab-{pid}-{kind}*"))


# --- loads ---

@pytest.mark.parametrize("after", [0.0, 0.4, 1.0])
def test_a_load_killed_keeps_the_previous_load_and_the_next_cleans_up(lab, after):
    root, scratch = lab
    before = counts(root)
    added = more_orders(root)
    pid = kill_when(root, scratch, ["ingest"], scratch_of(scratch), after=after)
    now = counts(root)  # all or nothing: the previous load, or (killed after its commit) the whole new one
    assert now == before or now == {**before, "order_lines": before["order_lines"] + added, "_loads": now["_loads"]}
    if now == before:
        assert any(scratch.glob(f"loyalty-lab-{pid}-*"))  # it died mid-load, leaving its scratch folder
    out = command(root, scratch, "ingest")
    assert out.returncode == 0, out.stderr
    assert counts(root)["order_lines"] == before["order_lines"] + added
    assert leftovers(root, scratch) == []


# --- merges ---

def test_a_merge_killed_in_splink_keeps_the_customers_and_its_spill_folder_goes(lab):
    root, scratch = lab
    before = counts(root)
    pid = kill_when(root, scratch, ["merge", "--full"], scratch_of(scratch, "splink-"))
    assert counts(root) == before  # same crosswalk, no new merge run
    assert [p.name.startswith(f"loyalty-lab-{pid}-splink-") for p in scratch.iterdir()] == [True]
    out = command(root, scratch, "merge", "--full")
    assert out.returncode == 0, out.stderr
    after = counts(root)
    assert after["crosswalk"] == before["crosswalk"] and after["merge_runs"] == before["merge_runs"] + 1
    assert leftovers(root, scratch) == []


def test_a_run_killed_in_its_merge_keeps_the_last_report_and_the_next_run_succeeds(lab):
    root, scratch = lab
    html = (root / "reports" / "good" / "segment_report.html").read_text()
    added = more_profiles(root)  # so that the run's merge has records to score
    before = counts(root)
    kill_when(root, scratch, ["run", "--run-id", "good"], scratch_of(scratch, "splink-"))
    assert counts(root)["profiles"] == before["profiles"] + added  # its load had committed
    assert counts(root)["merge_runs"] == before["merge_runs"]  # its merge had not
    assert (root / "reports" / "good" / "segment_report.html").read_text() == html
    out = command(root, scratch, "run", "--run-id", "good")
    assert out.returncode == 0, out.stderr
    assert counts(root)["merge_runs"] == before["merge_runs"] + 1
    assert leftovers(root, scratch) == []


def test_a_run_killed_in_its_load_changes_nothing_and_the_next_run_succeeds(lab):
    root, scratch = lab
    html = (root / "reports" / "good" / "segment_report.html").read_text()
    before = counts(root)
    added = more_orders(root)
    kill_when(root, scratch, ["run", "--run-id", "good"], scratch_of(scratch), after=0.3)
    assert counts(root) == before and (root / "reports" / "good" / "segment_report.html").read_text() == html
    out = command(root, scratch, "run", "--run-id", "good")
    assert out.returncode == 0, out.stderr
    assert counts(root)["order_lines"] == before["order_lines"] + added
    assert leftovers(root, scratch) == []


# --- reports ---

def test_a_report_killed_while_executing_keeps_the_last_good_one(lab):
    root, scratch = lab
    good = root / "reports" / "good"
    html = (good / "segment_report.html").read_text()
    mark = root / "kernel-started"
    pid = kill_when(root, scratch, ["report", "--run-id", "good"], lambda pid: mark.exists(), after=0.2,
                    LL_TEST_MARK=str(mark), LL_TEST_SLEEP="120")
    assert (good / "segment_report.html").read_text() == html
    assert [p.name.startswith(f".tmp-{pid}-good-") for p in (root / "reports").glob(".tmp-*")] == [True]
    out = command(root, scratch, "report", "--run-id", "good")
    assert out.returncode == 0, out.stderr
    assert leftovers(root, scratch) == [] and "report body" in (good / "segment_report.html").read_text()


def swap_killed(root, scratch, at_rename: int) -> int:
    "Run `swap_in` of a new `good` report in a process that kills itself with SIGKILL right after rename `at_rename`."
    new = root / "reports" / "new-good"
    new.mkdir()
    (new / "segment_report.html").write_text("the new report")
    code = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from loyalty_lab import report
        real, done = os.replace, []
        def replace(a, b):
            real(a, b)
            done.append(b)
            if len(done) == {at_rename}:
                os.kill(os.getpid(), signal.SIGKILL)
        os.replace = replace
        report.swap_in(Path({str(new)!r}), Path({str(root / "reports" / "good")!r}))
        """)
    proc = subprocess.run([sys.executable, "-c", code], env=environment(scratch), capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc


def test_a_kill_between_the_two_renames_of_swap_in_is_undone_by_the_next_start(lab):
    "The old report was only under .old-…: the next report run puts it back before anything else."
    root, scratch = lab
    html = (root / "reports" / "good" / "segment_report.html").read_text()
    swap_killed(root, scratch, at_rename=1)
    assert not (root / "reports" / "good").exists() and len(list((root / "reports").glob(".old-*-good-*"))) == 1
    out = command(root, scratch, "report", "--run-id", "other")
    assert out.returncode == 0, out.stderr
    assert (root / "reports" / "good" / "segment_report.html").read_text() == html  # the last good one, back
    assert leftovers(root, scratch) == []


def test_a_kill_after_both_renames_leaves_the_new_report_and_the_next_start_drops_the_old(lab):
    root, scratch = lab
    swap_killed(root, scratch, at_rename=2)
    assert (root / "reports" / "good" / "segment_report.html").read_text() == "the new report"
    out = command(root, scratch, "report", "--run-id", "other")
    assert out.returncode == 0, out.stderr
    assert (root / "reports" / "good" / "segment_report.html").read_text() == "the new report"
    assert leftovers(root, scratch) == []


# --- scratch folders named by process, removed once their process is gone ---

def test_splink_spill_and_the_storage_probe_are_named_by_process_and_cleaned_up(tmp_path, monkeypatch):
    import tempfile
    from loyalty_lab import profiles, storage
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for kind in ("splink-x1", "storage-x2", "x3"):
        (tmp_path / f"loyalty-lab-999999999-{kind}").mkdir()  # of killed processes
    (tmp_path / "loyalty-lab-keep").mkdir()  # not named by a process: not ours to judge
    with profiles._splink_db():
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(f"loyalty-lab-{os.getpid()}-splink-")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loyalty-lab-keep"]
    (tmp_path / "loyalty-lab-999999999-storage-x4").mkdir()
    storage.installed_storage.cache_clear()
    seen = []
    real = tempfile.TemporaryDirectory
    monkeypatch.setattr(tempfile, "TemporaryDirectory", lambda **kw: seen.append(kw["prefix"]) or real(**kw))
    storage.installed_storage()
    assert seen == [f"loyalty-lab-{os.getpid()}-storage-"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loyalty-lab-keep"]
