"""Bad input — concurrency: a second process never corrupts or half-uses the warehouse. Every command that needs it
while another process holds it says who holds it and what to do, exits non-zero without a traceback, and writes
nothing; a short wait within lock_timeout_seconds simply succeeds."""
import subprocess
import sys
import textwrap
import time

import pytest
from lab_helpers import cli, make_lab
from loyalty_lab import Warehouse


def hold(path, read_only=False, release_after=None):
    "A process that opens the warehouse at `path` and keeps it until its stdin closes (or `release_after` s)."
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from loyalty_lab import Warehouse
        wh = Warehouse({str(path)!r}, read_only={read_only})
        print("open", flush=True)
        time.sleep({release_after}) if {release_after is not None} else sys.stdin.read()
        wh.close()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "open"
    return holder


@pytest.fixture(scope="module")
def held_lab(tmp_path_factory):
    "A lab with its warehouse built, held open for writing by another process for the module's tests."
    root = make_lab(tmp_path_factory.mktemp("held"))
    assert cli("ingest", cwd=root, timeout=300).returncode == 0
    holder = hold(root / "data" / "warehouse.duckdb")
    yield root, holder
    holder.communicate("", timeout=30)


@pytest.mark.parametrize("args", [
    ["ingest"], ["merge"], ["report"], ["run"], ["forget", "C00000001", "--yes"],
    ["view360", "--out", "v.parquet"], ["triggers", "--out", "t.csv"],
    ["drop-source", "--table", "offers", "--source", "x"],
])
def test_a_command_on_a_warehouse_in_use_names_the_holder_and_writes_nothing(held_lab, args):
    root, holder = held_lab
    before = sorted(p.name for p in root.iterdir())
    out = cli(*args, cwd=root, timeout=300)
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    assert f"is in use by process {holder.pid}" in out.stderr and "lock_timeout_seconds" in out.stderr, out.stderr
    assert sorted(p.name for p in root.iterdir()) == before  # no report folder, no export, nothing half-written
    assert not any((root / "reports").glob("*")) if (root / "reports").exists() else True


def test_a_holder_that_finishes_within_the_timeout_is_waited_for(tmp_path):
    root = make_lab(tmp_path)
    ini = root / "settings.ini"
    ini.write_text(ini.read_text().replace("lock_timeout_seconds = 0.5", "lock_timeout_seconds = 30"))
    Warehouse(root / "data" / "warehouse.duckdb").close()
    holder = hold(root / "data" / "warehouse.duckdb", release_after=2)
    started = time.monotonic()
    out = cli("ingest", cwd=root, timeout=300)
    holder.wait(timeout=30)
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - started >= 1.5  # it waited rather than failing at once
    with Warehouse(root / "data" / "warehouse.duckdb", read_only=True) as wh:
        assert wh.table("order_lines").count().to_pyarrow().as_py() > 1000


def test_readers_share_the_warehouse_and_a_writer_waits_for_them(tmp_path):
    path = tmp_path / "wh.duckdb"
    Warehouse(path).close()
    readers = [hold(path, read_only=True) for _ in range(2)]
    try:
        with Warehouse(path, read_only=True, lock_timeout=0.3) as wh:  # a third reader opens at once
            assert wh.table("offers").count().to_pyarrow().as_py() == 0
        with pytest.raises(Exception, match=r"is in use by process \d+ .*Waited 0.3 s"):
            Warehouse(path, lock_timeout=0.3)
    finally:
        for r in readers:
            r.communicate("", timeout=30)
    Warehouse(path, lock_timeout=0.3).close()  # released: the writer gets it
