"""Warehouse loads: bad input gets a clear error or is quarantined with its reason; loads are idempotent and atomic."""
import re
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from loyalty_lab import LoyaltyLabError, Warehouse, ingest_sources, load_settings

HEADER = "order_id,line_no,source_system,source_customer_id,ts,channel,product_id,category,quantity,unit_price\n"


def lines_csv(tmp_path, rows, name="orders.csv", header=HEADER, encoding="utf-8"):
    f = tmp_path / name
    f.write_bytes((header + "".join(r + "\n" for r in rows)).encode(encoding))
    return f


def good_rows(n, prefix="A"):
    return [f"{prefix}{i},1,pos,C{i % 7},2024-05-0{1 + i % 9} 10:00,store,P{i},dairy,{1 + i % 3},{100 + i}.5"
            for i in range(n)]


def snapshot(wh):
    "Everything a load may change, for 'the warehouse is unchanged' assertions."
    return (wh.table("order_lines").order_by("order_id").to_pandas(), wh.rejects(), wh.loads())


def assert_unchanged(before, wh):
    for a, b in zip(before, snapshot(wh)):
        pd.testing.assert_frame_equal(a, b)


@pytest.fixture
def wh(tmp_path):
    with Warehouse(tmp_path / "wh.duckdb", timezone="Europe/Belgrade", lock_timeout=0.5) as w:
        yield w


@pytest.fixture
def loaded(tmp_path, wh):
    "A warehouse that already holds one good load, to prove failed loads leave it alone."
    wh.ingest("order_lines", lines_csv(tmp_path, good_rows(20), "base.csv"))
    return wh


def test_good_file_loads_typed_rows(tmp_path, wh):
    r = wh.ingest("order_lines", lines_csv(tmp_path, good_rows(20)))
    assert (r.status, r.rows_read, r.rows_loaded, r.rows_rejected) == ("loaded", 20, 20, 0)
    t = wh.table("order_lines").order_by("_line").to_pandas()
    assert t.quantity.sum() == sum(1 + i % 3 for i in range(20))
    assert t.unit_price.iloc[3] == 103.5 and t._line.iloc[0] == 2  # header is line 1
    # a time without an offset is in the lab's time zone: 10:00 in Belgrade in May is 08:00 UTC
    assert t.ts.iloc[0] == pd.Timestamp("2024-05-01 08:00", tz="UTC")


def test_missing_required_column(tmp_path, loaded):
    before = snapshot(loaded)
    f = lines_csv(tmp_path, ["A1,1,pos,C1,2024-05-01,store,P1,dairy,1"],
                  header=HEADER.replace(",unit_price", ""))
    with pytest.raises(LoyaltyLabError) as e:
        loaded.ingest("order_lines", f)
    msg = str(e.value)
    assert str(f) in msg and "missing required column(s) 'unit_price'" in msg
    assert "The file has: order_id, line_no" in msg and "[columns.order_lines]" in msg
    assert_unchanged(before, loaded)


def test_staging_tables_are_dropped_after_good_and_failed_loads(tmp_path, wh):
    wh.ingest("order_lines", lines_csv(tmp_path, good_rows(5)))
    with pytest.raises(LoyaltyLabError):
        wh.ingest("order_lines", lines_csv(tmp_path, [r.rsplit(",", 1)[0] + ",x" for r in good_rows(5)], "bad.csv"))
    temporary = wh.con.con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0]
    assert temporary == 0


def test_column_mapping_points_the_lab_at_other_names(tmp_path, wh):
    header = "Racun,Stavka,Sistem,KupacID,DatumVreme,Kanal,Artikal,Kategorija,Kolicina,Cena\n"
    f = lines_csv(tmp_path, good_rows(5), header=header)
    mapping = dict(zip(HEADER.strip().split(","), header.strip().split(",")))
    assert wh.ingest("order_lines", f, columns=mapping).rows_loaded == 5
    with pytest.raises(LoyaltyLabError, match="quantity = Qty: the file has no column 'Qty'; its columns are: Racun"):
        wh.ingest("order_lines", f, columns={**mapping, "quantity": "Qty"})


def test_text_in_numeric_column_is_quarantined_with_reason(tmp_path, wh):
    rows = good_rows(40)
    rows[5] = rows[5].replace(",dairy,3,", ",dairy,three,")  # quantity
    f = lines_csv(tmp_path, rows)
    r = wh.ingest("order_lines", f)
    assert (r.rows_loaded, r.rows_rejected) == (39, 1)
    rej = wh.rejects("order_lines")
    assert rej[["line", "column", "value", "reason"]].values.tolist() == [[7, "quantity", "three", "not a number"]]
    assert '"order_id":"A5"' in rej.record.iloc[0].replace(" ", "")
    assert "quantity: 1 × not a number — e.g. 'three' (lines 7)" in r.summary()


def test_text_in_numeric_column_fails_the_load_above_the_reject_rate(tmp_path, loaded):
    before = snapshot(loaded)
    rows = [r.rsplit(",", 1)[0] + ",n/a" for r in good_rows(10)]
    f = lines_csv(tmp_path, rows)
    with pytest.raises(LoyaltyLabError) as e:
        loaded.ingest("order_lines", f)
    msg = str(e.value)
    assert str(f) in msg and "10 of 10 rows (100.0%) are invalid" in msg and "nothing was loaded" in msg
    assert "unit_price: 10 × not a number — e.g. 'n/a'" in msg
    assert_unchanged(before, loaded)


def test_integer_column_does_not_round(tmp_path, wh):
    rows = good_rows(30)
    rows[0] = rows[0].replace("A0,1,", "A0,1.5,")
    r = wh.ingest("order_lines", lines_csv(tmp_path, rows))
    assert r.problems[["column", "examples"]].values.tolist() == [["line_no", "'1.5'"]]


def test_unparseable_and_mixed_date_formats(tmp_path, loaded):
    before = snapshot(loaded)
    rows = good_rows(6, "M")
    rows[1] = rows[1].replace("2024-05-02 10:00", "02.05.2024 10:00")
    rows[2] = rows[2].replace("2024-05-03 10:00", "05/03/2024")
    rows[3] = rows[3].replace("2024-05-04 10:00", "sometime in May")
    f = lines_csv(tmp_path, rows)
    with pytest.raises(LoyaltyLabError) as e:
        loaded.ingest("order_lines", f)
    msg = str(e.value)
    assert str(f) in msg and "3 of 6 rows" in msg
    assert "ts: 1 × not a timestamp (ISO8601); looks like %d.%m.%Y — mixed date formats? set the source's date_format — e.g. '02.05.2024 10:00' (lines 3)" in msg
    assert "looks like %m/%d/%Y or %d/%m/%Y" in msg and "e.g. 'sometime in May' (lines 5)" in msg
    assert_unchanged(before, loaded)


def test_declared_date_format(tmp_path, wh):
    rows = [r.replace("2024-05-0", "0").replace(" 10:00", ".05.2024") for r in good_rows(5)]
    r = wh.ingest("order_lines", lines_csv(tmp_path, rows), date_format="%d.%m.%Y")
    assert r.rows_loaded == 5
    assert wh.table("order_lines").ts.min().to_pyarrow().as_py().isoformat() == "2024-04-30T22:00:00+00:00"


def test_non_utf8_file_fails_clearly_and_loads_with_declared_encoding(tmp_path, wh):
    header = ("source_system,source_customer_id,first_name,last_name,city,signup_date\n")
    rows = ["pos,C1,Đorđe,Đorđević,Niš,2024-01-05", "web,W2,Łukasz,Wójcik,Kraków,2024-02-01"]
    f = lines_csv(tmp_path, rows, "profiles.csv", header=header, encoding="cp1250")
    before = (wh.table("profiles").to_pandas(), wh.loads())
    with pytest.raises(LoyaltyLabError) as e:
        wh.ingest("profiles", f)
    msg = str(e.value)
    assert str(f) in msg and "line 2 is not valid utf-8" in msg and "encoding = cp1250" in msg
    pd.testing.assert_frame_equal(before[0], wh.table("profiles").to_pandas())
    r = wh.ingest("profiles", f, encoding="cp1250")
    assert r.rows_loaded == 2
    names = wh.table("profiles").order_by("source_customer_id").to_pandas()
    assert names.last_name.tolist() == ["Đorđević", "Wójcik"] and names.city.tolist() == ["Niš", "Kraków"]


def test_utf8_with_bom_loads(tmp_path, wh):
    f = tmp_path / "bom.csv"
    f.write_bytes(b"\xef\xbb\xbf" + (HEADER + good_rows(1)[0] + "\n").encode())
    assert wh.ingest("order_lines", f).rows_loaded == 1


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty (0 bytes)"),
    (HEADER.encode(), "the file has a header but no data rows"),
])
def test_empty_file(tmp_path, loaded, content, message):
    before = snapshot(loaded)
    f = tmp_path / "empty.csv"
    f.write_bytes(content)
    with pytest.raises(LoyaltyLabError, match=re.escape(message)) as e:
        loaded.ingest("order_lines", f)
    assert str(f) in str(e.value)
    assert_unchanged(before, loaded)


def test_duplicated_primary_keys(tmp_path, wh):
    rows = good_rows(80)
    rows.append(rows[3])  # exact duplicate (a double export): keep the first copy
    rows.append(rows[4].replace(",dairy,", ",bakery,"))  # same key, other content: reject both
    r = wh.ingest("order_lines", lines_csv(tmp_path, rows))
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (82, 79, 3)
    rej = wh.rejects("order_lines")[["line", "column", "value", "reason"]].values.tolist()
    conflict = "duplicate primary key (order_id, line_no) with different values; first at line 6"
    assert sorted(rej) == [[6, "order_id, line_no", "(A4, 1)", conflict],
                           [82, "order_id, line_no", "(A3, 1)", "exact duplicate of line 5"],
                           [83, "order_id, line_no", "(A4, 1)", conflict]]
    assert wh.table("order_lines").filter(lambda t: t.order_id == "A3").count().to_pyarrow().as_py() == 1


def test_duplicated_primary_key_strict_is_an_error(tmp_path, loaded):
    before = snapshot(loaded)
    rows = good_rows(3) + good_rows(3)[:1]
    with pytest.raises(LoyaltyLabError, match=r"order_id, line_no: 1 × exact duplicate of line 2 — e.g. '\(A0, 1\)'"):
        loaded.ingest("order_lines", lines_csv(tmp_path, rows), max_reject_rate=0)
    assert_unchanged(before, loaded)


def test_primary_key_already_loaded_from_another_source(tmp_path, loaded):
    f = lines_csv(tmp_path, good_rows(20)[:2] + good_rows(60, "B"), "copy.csv")
    r = loaded.ingest("order_lines", f)
    assert r.rows_rejected == 2
    assert set(r.problems.reason) == {f"primary key already loaded from {tmp_path / 'base.csv'}"}


def test_moved_file_is_told_to_drop_its_old_source(tmp_path, loaded):
    moved = lines_csv(tmp_path, good_rows(20), "moved.csv")
    with pytest.raises(LoyaltyLabError, match=r"loyalty-lab drop-source --table order_lines --source <old source>"):
        loaded.ingest("order_lines", moved)
    with pytest.raises(LoyaltyLabError, match="has no source 'nope'; its sources are: .*base.csv"):
        loaded.drop_source("order_lines", "nope")
    assert loaded.drop_source("order_lines", str(tmp_path / "base.csv")) == 20
    assert loaded.ingest("order_lines", moved).rows_loaded == 20
    assert loaded.loads().source.tolist() == [str(moved)]


def test_rows_dated_after_as_of(tmp_path, loaded):
    rows = good_rows(40, "N")
    rows[2] = rows[2].replace("2024-05-03", "2024-07-01")
    r = loaded.ingest("order_lines", lines_csv(tmp_path, rows, "new.csv").__fspath__(), as_of="2024-06-30")
    assert r.rows_rejected == 1
    p = r.problems.iloc[0]
    assert (p.column, p.reason, p.lines) == ("ts", "dated after as_of 2024-06-30T23:59:59.999999+02:00", "4")
    # strict: the whole load fails and names the file, column and value
    before = snapshot(loaded)
    with pytest.raises(LoyaltyLabError, match=r"ts: 1 × dated after as_of 2024-06-30.* e.g. '2024-07-01 10:00:00\+02'"):
        loaded.ingest("order_lines", lines_csv(tmp_path, rows, "new2.csv"), as_of="2024-06-30", max_reject_rate=0)
    assert_unchanged(before, loaded)


def test_vocabulary_and_minimum(tmp_path, wh):
    rows = good_rows(40)
    rows[0] = rows[0].replace(",store,", ",Store,")  # case-insensitive: fine, stored lower-case
    rows[1] = rows[1].replace(",store,", ",shop,")
    rows[2] = rows[2].rsplit(",", 1)[0] + ",-5"
    r = wh.ingest("order_lines", lines_csv(tmp_path, rows))
    assert sorted(r.problems.reason) == ["below the minimum 0", "not one of store, web, app, call_centre"]
    assert set(wh.table("order_lines").channel.to_pandas()) == {"store"}


def test_same_file_twice_adds_nothing_and_changed_file_replaces(tmp_path, wh):
    f = lines_csv(tmp_path, good_rows(10))
    assert wh.ingest("order_lines", f).status == "loaded"
    assert wh.ingest("order_lines", f).status == "unchanged"
    assert wh.table("order_lines").count().to_pyarrow().as_py() == 10
    lines_csv(tmp_path, good_rows(6))  # same path, new content
    r = wh.ingest("order_lines", f)
    assert (r.status, r.rows_loaded) == ("replaced", 6)
    assert wh.table("order_lines").count().to_pyarrow().as_py() == 6
    assert len(wh.loads()) == 1


def test_as_of_changes_reload_only_when_they_change_the_outcome(tmp_path, wh):
    rows = good_rows(40, "T")
    rows[0] = rows[0].replace("2024-05-01", "2024-07-15")
    f = lines_csv(tmp_path, rows)
    assert wh.ingest("order_lines", f, as_of="2024-06-30").rows_rejected == 1
    assert wh.ingest("order_lines", f, as_of="2024-06-30").status == "unchanged"
    # a later as_of admits the July row: the load is redone
    r = wh.ingest("order_lines", f, as_of="2024-12-31")
    assert (r.status, r.rows_loaded, r.rows_rejected) == ("replaced", 40, 0)
    # as_of 'now' on every scheduled run: nothing is late either way, so nothing is redone
    assert wh.ingest("order_lines", f, as_of=pd.Timestamp.now(tz="UTC")).status == "unchanged"
    assert wh.ingest("order_lines", f, as_of="2024-07-01").status == "replaced"


def test_unchanged_load_reports_its_earlier_problems(tmp_path, wh):
    rows = good_rows(40, "U")
    rows[1] = rows[1].replace(",dairy,2,", ",dairy,zwei,")
    f = lines_csv(tmp_path, rows)
    first, second = wh.ingest("order_lines", f), wh.ingest("order_lines", f)
    assert second.status == "unchanged" and first.rows_rejected == 1
    pd.testing.assert_frame_equal(first.problems, second.problems)


def test_failure_during_commit_leaves_the_warehouse_unchanged(tmp_path, loaded, monkeypatch):
    before = snapshot(loaded)
    rows = good_rows(20)
    rows[0] = rows[0].replace(",1,", ",x,", 1)
    f = lines_csv(tmp_path, rows, "base.csv")  # replaces the earlier load ... until it fails

    def boom(self, prepared):
        raise RuntimeError("disk full")
    monkeypatch.setattr(Warehouse, "_write_rejects", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        loaded.ingest("order_lines", f)
    assert_unchanged(before, loaded)


def test_parquet_and_dataframe_sources(tmp_path, wh):
    frame = pd.read_csv(lines_csv(tmp_path, good_rows(8)), dtype=str)
    frame.to_parquet(tmp_path / "orders.parquet")
    assert wh.ingest("order_lines", tmp_path / "orders.parquet").rows_loaded == 8
    typed = frame.assign(quantity=frame.quantity.astype(int), unit_price=frame.unit_price.astype(float),
                         order_id=frame.order_id + "-df")
    r = wh.ingest("order_lines", typed, source_name="frame")
    assert r.rows_loaded == 8
    with pytest.raises(LoyaltyLabError, match="needs source_name"):
        wh.ingest("order_lines", typed)


def test_unknown_table_and_unsupported_file(tmp_path, wh):
    with pytest.raises(LoyaltyLabError, match="unknown table 'orders'; the contract's tables are profiles, order_lines"):
        wh.ingest("orders", tmp_path / "x.csv")
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    with pytest.raises(LoyaltyLabError, match="unsupported file type '.xlsx'"):
        wh.ingest("order_lines", tmp_path / "x.xlsx")


def test_second_process_gets_a_clear_message(tmp_path):
    path = tmp_path / "wh.duckdb"
    Warehouse(path).close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from loyalty_lab import Warehouse
        wh = Warehouse({str(path)!r})
        print("open", flush=True)
        sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        for read_only in (False, True):
            with pytest.raises(LoyaltyLabError) as e:
                Warehouse(path, read_only=read_only, lock_timeout=0.3)
            assert f"is in use by process {holder.pid}" in str(e.value) and "Waited 0.3 s" in str(e.value)
    finally:
        holder.communicate("", timeout=30)
    with Warehouse(path, read_only=True) as wh:  # released: opens fine
        assert wh.table("order_lines").count().to_pyarrow().as_py() == 0


def test_read_only_warehouse_must_exist_and_cannot_load(tmp_path):
    with pytest.raises(LoyaltyLabError, match="does not exist yet; build it first with `loyalty-lab ingest`"):
        Warehouse(tmp_path / "none.duckdb", read_only=True)
    Warehouse(tmp_path / "wh.duckdb").close()
    with Warehouse(tmp_path / "wh.duckdb", read_only=True) as wh:
        with pytest.raises(LoyaltyLabError, match="opened read-only"):
            wh.ingest("order_lines", tmp_path / "x.csv")


def test_ingest_sources_is_all_or_nothing(lab):
    s = load_settings()
    reports = ingest_sources(s)
    assert [r.table for r in reports] == ["profiles", "order_lines", "interactions", "loyalty_ledger", "offers"]
    sample = pd.read_csv(lab / "data" / "sample" / "order_lines.csv")
    assert reports[1].rows_loaded == len(sample)
    # break one table: no table is touched, even those that would have loaded fine
    offers = lab / "data" / "sample" / "offers.csv"
    offers.write_text(offers.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    (lab / "data" / "sample" / "profiles.csv").write_text(
        (lab / "data" / "sample" / "profiles.csv").read_text() + "pos,NEW1,,,,,,,,,,,2024-06-01,,,,\n")
    with pytest.raises(LoyaltyLabError, match="offers.csv: the file has a header but no data rows"):
        ingest_sources(s)
    with Warehouse.open(s, read_only=True) as wh:
        assert wh.table("profiles").count().to_pyarrow().as_py() == reports[0].rows_loaded


def test_memory_limit_from_settings_reaches_duckdb(tmp_path):
    f = tmp_path / "settings.ini"
    f.write_text("[warehouse]\npath = w.duckdb\nmemory_limit = 300MB\n")
    s = load_settings(f, env={})
    with Warehouse.open(s) as w:
        limit = w.con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit in ("300.0 MB", "286.1 MiB")  # DuckDB prints the limit back in its own units


def test_a_warehouse_of_another_duckdb_storage_version_is_refused_unchanged(tmp_path):
    from pathlib import Path
    import shutil
    theirs = tmp_path / "warehouse.duckdb"
    shutil.copy(Path(__file__).parent / "data" / "duckdb-2.0.1.duckdb", theirs)
    before = theirs.read_bytes()
    for read_only in (True, False):
        with pytest.raises(LoyaltyLabError, match=r"storage version 69 \(DuckDB 2.0; created by DuckDB v2.0.1\), "
                                                  r"but the installed duckdb .* it was not opened, so it is unchanged"):
            Warehouse(theirs, read_only=read_only)
    assert theirs.read_bytes() == before


@pytest.mark.parametrize("path", [3, None, "  "])
def test_warehouse_path_must_be_a_file_name(path):
    "Warehouse(3) raised TypeError: expected str, bytes or os.PathLike object, not int."
    with pytest.raises(LoyaltyLabError, match=f"Warehouse: path must be the DuckDB file to open, as a str or Path "
                                              f"\\(e.g. 'data/warehouse.duckdb'\\), not {re.escape(repr(path))} "
                                              f"\\({type(path).__name__}\\); or open the configured one"):
        Warehouse(path)
