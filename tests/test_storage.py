"""A warehouse's storage format never changes silently: files from another DuckDB storage version are refused
before DuckDB opens them; files the installed duckdb reads are accepted and keep their format."""
import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest
from loyalty_lab import LoyaltyLabError, Warehouse
from loyalty_lab.storage import check_warehouse_storage, installed_storage, read_storage_version

# An empty database written by duckdb 2.0.1 (`duckdb.connect(path)` + CHECKPOINT): a real file of another
# storage version, 12 KB, committed so that the test needs no second DuckDB installed.
DUCKDB_2_FILE = Path(__file__).parent / "data" / "duckdb-2.0.1.duckdb"


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_installed_duckdb_reads_and_writes():
    here = installed_storage()
    assert here.duckdb_version == duckdb.__version__
    assert here.reads[0] == 64 and here.reads[0] <= here.writes <= here.reads[1]


def test_a_warehouse_of_the_installed_duckdb_is_accepted(tmp_path):
    with Warehouse(tmp_path / "wh.duckdb", lock_timeout=0.5):
        pass
    found = check_warehouse_storage(tmp_path / "wh.duckdb")
    assert found.number == installed_storage().writes and found.created_by == f"v{duckdb.__version__}"


def test_no_file_yet_is_not_refused(tmp_path):
    assert check_warehouse_storage(tmp_path / "data" / "warehouse.duckdb") is None


def test_the_newest_format_it_writes_is_accepted_and_kept_when_the_warehouse_writes(tmp_path):
    path = tmp_path / "wh.duckdb"
    con = duckdb.connect()
    con.execute(f"ATTACH '{path}' AS w (STORAGE_VERSION 'latest')")
    con.execute("DETACH w")
    con.close()
    newest = installed_storage().reads[1]
    assert check_warehouse_storage(path).number == newest
    with Warehouse(path, lock_timeout=0.5) as wh:  # creates its tables: writes to the file
        assert wh.con.list_tables()
    assert read_storage_version(path).number == newest


def test_a_duckdb_2_warehouse_is_refused_naming_both_versions_and_left_unchanged(tmp_path):
    path = shutil.copy(DUCKDB_2_FILE, tmp_path / "warehouse.duckdb")
    before = sha256(path)
    found = read_storage_version(path)
    assert (found.number, found.created_by) == (69, "v2.0.1")
    here = installed_storage()
    if here.reads[0] <= 69 <= here.reads[1]:
        pytest.skip(f"the installed duckdb {here.duckdb_version} reads DuckDB 2's format")
    with pytest.raises(LoyaltyLabError) as e:
        check_warehouse_storage(path)
    text = str(e.value)
    assert "storage version 69 (DuckDB 2.0; created by DuckDB v2.0.1)" in text
    assert f"duckdb {here.duckdb_version} reads storage versions 64 to {here.reads[1]}" in text
    assert '`pip install "duckdb==2.0.1"`' in text and "EXPORT DATABASE" in text and "loyalty-lab ingest" in text
    assert sha256(path) == before
    # the header is read as DuckDB reads it: duckdb itself refuses the file, naming 69 (duckdb 1.5) or, before
    # DuckDB knew the "number is in the database header" marker, the marker 999 (duckdb 1.4)
    with pytest.raises(duckdb.IOException, match="version number (69|999),"):
        duckdb.connect(str(path), read_only=True)


def test_a_file_that_is_not_a_duckdb_database_is_refused(tmp_path):
    for name, content in [("empty.duckdb", b""), ("notes.duckdb", b"customer_id,amount\n" * 400)]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(LoyaltyLabError, match="is not a DuckDB database file"):
            check_warehouse_storage(tmp_path / name)
