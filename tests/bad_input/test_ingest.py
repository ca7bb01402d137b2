"""Bad input — ingest: files that are not what they claim, values no shop has, rows that do not belong."""
import codecs
import gzip
import io
import re

import duckdb
import pandas as pd
import pytest
from loyalty_lab import LoyaltyLabError, Warehouse, ingest_sources, load_settings
from loyalty_lab.report import orphan_summary
from loyalty_lab.sources import check_sources

HEADER = "order_id,line_no,source_system,source_customer_id,ts,channel,product_id,category,quantity,unit_price"
ROW = "A1,1,pos,C1,2024-05-01 10:00,store,P1,dairy,1,2.5"


# --- ingest: files that are not what they claim ---

@pytest.mark.parametrize("content, message", [
    (b"PK\x03\x04" + b"\x00" * 60, "this is a zip archive — an Excel workbook (.xlsx) under a .csv name?"),
    (codecs.BOM_UTF16_LE + f"{HEADER}\n{ROW}\n".encode("utf-16-le"), "the file is UTF-16 text (Excel's \"Unicode text\")"),
    (f"{HEADER}\n{ROW}\n".encode() + b"\x00" * 4096 + b"\n", "line 3 holds NUL bytes — a torn or binary copy"),
    (f"{HEADER}\n{ROW}\n".replace("dairy", "da\x00iry").encode(), "line 2 holds NUL bytes"),
    (gzip.compress(f"{HEADER}\n{ROW}\n".encode()), "not CSV text but compressed with gzip; unpack it first"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 60, "not CSV text but an old Excel workbook (.xls)"),
    (b"PAR1" + b"\x00" * 60, "not CSV text but a Parquet file; name it .parquet"),
    (b"%PDF-1.7\n" + b"\x00" * 60, "not CSV text but a PDF document"),
], ids=["xlsx renamed csv", "utf-16", "NUL block", "NUL in a value", "gzip", "xls", "parquet", "pdf"])
def test_files_that_are_no_csv_text_say_what_they_are(tmp_path, wh, content, message):
    f = tmp_path / "orders.csv"
    f.write_bytes(content)
    with pytest.raises(LoyaltyLabError, match=None) as e:
        wh.ingest("order_lines", f)
    assert message in str(e.value) and "encoding = cp1250" not in str(e.value)
    assert wh.table("order_lines").count().to_pyarrow().as_py() == 0


def test_a_declared_utf16_file_loads(tmp_path, wh):
    f = tmp_path / "orders.csv"
    f.write_bytes(codecs.BOM_UTF16_LE + f"{HEADER}\n{ROW}\n".encode("utf-16-le"))
    assert wh.ingest("order_lines", f, encoding="utf-16").rows_loaded == 1


def test_a_semicolon_file_read_with_commas_names_the_delimiter(tmp_path, wh):
    f = tmp_path / "orders.csv"
    f.write_text(HEADER.replace(",", ";") + "\n" + ROW.replace(",", ";") + "\n")
    with pytest.raises(LoyaltyLabError, match="the file looks semicolon-separated; set delimiter = ; for this source"):
        wh.ingest("order_lines", f)


def test_decimal_commas_read_with_a_point_name_the_decimal_setting(tmp_path, wh):
    f = tmp_path / "orders.csv"
    f.write_text(f"{HEADER}\n" + ROW.replace(",2.5", ',"2,5"') + "\n")
    with pytest.raises(LoyaltyLabError, match="looks like a decimal comma — set decimal = , for this source"):
        wh.ingest("order_lines", f, max_reject_rate=0)


# --- faults: a write that fails is rolled back and said plainly ---

def test_a_failing_warehouse_write_is_a_clear_error_and_changes_nothing(tmp_path, wh, monkeypatch):
    f = tmp_path / "orders.csv"
    f.write_text(f"{HEADER}\n{ROW}\n")
    def disk_full(self, prepared):
        raise duckdb.IOException("Could not write file: No space left on device")
    monkeypatch.setattr(Warehouse, "_commit", disk_full)
    with pytest.raises(LoyaltyLabError, match="writing the load failed .*No space left on device.*rolled back"):
        wh.ingest("order_lines", f)
    monkeypatch.undo()
    assert wh.table("order_lines").count().to_pyarrow().as_py() == 0


def test_a_utf8_file_declared_cp1250_is_refused_not_loaded_as_mojibake(tmp_path, wh):
    "Issue 19: 120 of 150 names were mangled and the load said nothing."
    f = tmp_path / "orders.csv"
    f.write_text(f"{HEADER}\n" + ROW.replace("dairy", "čajevi i šećer") + "\n", encoding="utf-8")
    with pytest.raises(LoyaltyLabError, match="declared cp1250, but the file is UTF-8.*Set encoding = utf-8"):
        wh.ingest("order_lines", f, encoding="cp1250")
    f.write_bytes(f"{HEADER}\n{ROW.replace('dairy', 'čajevi i šećer')}\n".encode("cp1250"))  # the real thing loads
    assert wh.ingest("order_lines", f, encoding="cp1250").rows_loaded == 1


# --- crash: what a killed run leaves behind is cleaned up by the next one ---

def test_scratch_folders_of_a_killed_load_are_removed_by_the_next(tmp_path, wh, monkeypatch):
    import tempfile
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    (scratch / "loyalty-lab-999999999-killed").mkdir()  # no such process
    (scratch / "loyalty-lab-elsewhere").mkdir()  # not ours to judge
    f = tmp_path / "orders.csv"
    f.write_text(f"{HEADER}\n{ROW}\n")
    wh.ingest("order_lines", f)
    assert sorted(p.name for p in scratch.iterdir()) == ["loyalty-lab-elsewhere"]


# --- ingest: CSV that DuckDB cannot split, said in plain words ---

OK = ROW.replace("A1,", "A{n},")


@pytest.mark.parametrize("text, message", [
    (f"{HEADER}\n{ROW}\n" + ROW.replace("A1", "A2").replace("dairy", "x" * 5_000_000) + "\n",
     "line 3 is 5.0 MB long, more than the 2 MB a row may have: a field holding a whole document or image, or a "
     "quote (\") opened and never closed"),
    (f"{HEADER}\n{ROW}\n" + ROW.replace("dairy", '"dairy') + "\n" + "".join(OK.format(n=n) + "\n" for n in range(3, 500)),
     "line 3 opens a quote (\") that is never closed, so the rest of the file would be one value"),
    (f"{HEADER}\n{ROW},plastic bag\n", "line 2 has 11 fields where the header has 10: a value holding the delimiter "
     "',' without quotes around it"),
    (f"{HEADER}\n{ROW}\nA2,1,pos\n", "line 3 has 3 fields where the header has 10: a row cut short, or broken over two "
     "lines"),
    (f"{HEADER},\n{ROW},\n", "column 11 of the header has no name, after 'unit_price'; name it in the export, or "
     "delete the column if it is empty"),
    (HEADER.replace(",channel,", ",,") + "\n" + ROW.replace(",store,", ",,") + "\n",
     "column 6 of the header has no name, after 'ts'"),
    (f"{HEADER},category\n{ROW},dairy\n", "the header names 'category' twice (columns 8 and 11; names compared "
     "ignoring case and spaces); rename one of them"),
    (f"{HEADER},Unit_Price \n{ROW},2.5\n", "the header names 'Unit_Price' twice (columns 10 and 11"),
], ids=["5 MB field", "unclosed quote", "extra field", "short row", "unnamed last column", "unnamed column",
        "duplicate name", "duplicate name other case"])
def test_csv_that_cannot_be_split_names_the_file_the_line_and_the_fix(tmp_path, wh, text, message):
    f = tmp_path / "orders.csv"
    f.write_text(text)
    with pytest.raises(LoyaltyLabError) as e:
        wh.ingest("order_lines", f)
    said = str(e.value)
    assert message in said and "orders.csv" in said
    assert "CSV Error" not in said and "Binder Error" not in said and len(said) < 600
    assert wh.table("order_lines").count().to_pyarrow().as_py() == 0


@pytest.mark.parametrize("delimiter, word, setting", [(";", "semicolon", ";"), ("\t", "tab", "\\t"), ("|", "pipe", "|")])
def test_a_file_split_by_another_delimiter_says_which_to_set(tmp_path, wh, delimiter, word, setting):
    f = tmp_path / "orders.csv"
    f.write_text(HEADER.replace(",", delimiter) + "\n" + ROW.replace(",", delimiter) + "\n")
    with pytest.raises(LoyaltyLabError, match=f"looks {word}-separated; set delimiter = {re.escape(setting)} "):
        wh.ingest("order_lines", f)
    assert wh.ingest("order_lines", f, delimiter=delimiter).rows_loaded == 1


@pytest.mark.parametrize("extra, message", [
    ("orders_2024-03.xlsx", "the folder also holds files that are neither CSV nor Parquet: 'orders_2024-03.xlsx'"),
    ("orders_2024-03.csv.gz", "the folder also holds files that are neither CSV nor Parquet: 'orders_2024-03.csv.gz'"),
], ids=["xlsx", "csv.gz"])
def test_a_folder_holding_other_files_is_refused_not_read_in_part(tmp_path, extra, message):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "orders_2024-01.csv").write_text(f"{HEADER}\n{ROW}\n")
    (folder / extra).write_bytes(b"PK\x03\x04")
    (folder / ".DS_Store").write_bytes(b"\x00")  # hidden files are not exports
    for path in ("exports", "exports/orders_*"):
        settings = lab(tmp_path, f"[source.pos]\ntable = order_lines\npath = {path}\n")
        with pytest.raises(LoyaltyLabError) as e:
            ingest_sources(settings)
        assert (message if path == "exports" else f"matches files that are neither CSV nor Parquet: '{extra}'") in str(e.value)
    (folder / extra).unlink()
    assert [r.rows_loaded for r in ingest_sources(lab(tmp_path, "[source.pos]\ntable = order_lines\npath = exports\n"))] == [1]


# --- ingest: values no shop has ---

def lab(tmp_path, text=""):
    "Settings of a lab in `tmp_path` with its own warehouse; `text` adds sections."
    (tmp_path / "settings.ini").write_text("[warehouse]\npath = wh.duckdb\nlock_timeout_seconds = 0.5\n"
                                           "[run]\nas_of = 2024-06-30\n" + text, encoding="utf-8")
    return load_settings(tmp_path / "settings.ini", env={})


def orders_with(tmp_path, *odd, good=30):
    "An orders file of `good` ordinary lines and one line per (quantity, unit_price) in `odd`, after them."
    rows = [OK.format(n=n) for n in range(good)]
    rows += [ROW.replace("A1,", f"Z{i},").replace(",1,2.5", f",{q},{p}") for i, (q, p) in enumerate(odd)]
    f = tmp_path / "orders.csv"
    f.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    return f


def counts_add_up(wh, report, rows_in_file):
    "Nothing silently dropped: every line of the file is loaded or rejected, and each rejected line is in rejects."
    assert report.rows_read == rows_in_file
    assert report.rows_loaded + report.rows_rejected == rows_in_file
    assert wh.table("order_lines").count().to_pyarrow().as_py() == report.rows_loaded
    assert wh.rejects("order_lines").line.nunique() == report.rows_rejected


@pytest.mark.parametrize("quantity, unit_price, column, reason", [
    ("1e12", "0.7", "quantity", "above max_quantity 100,000 in size (raise [warehouse] max_quantity if real)"),
    ("100001", "1", "quantity", "above max_quantity 100,000 in size"),
    ("-200000", "1", "quantity", "above max_quantity 100,000 in size"),
    ("1", "20000000", "unit_price", "above max_unit_price 10,000,000 (raise [warehouse] max_unit_price if real)"),
    ("1", "1e300", "unit_price", "above max_unit_price 10,000,000"),
    ("50000", "5000", "line_amount", "quantity × unit_price above max_line_amount 100,000,000 in size (raise "
                                     "[warehouse] max_line_amount if real)"),
    ("-20000", "9999", "line_amount", "quantity × unit_price above max_line_amount 100,000,000 in size"),
], ids=["1e12 quantity", "quantity just above", "return of 200000", "unit price", "1e300 unit price",
        "line amount", "returned line amount"])
def test_sizes_beyond_the_bounds_are_quarantined_with_the_setting_to_raise(tmp_path, wh, quantity, unit_price, column, reason):
    report = wh.ingest("order_lines", orders_with(tmp_path, (quantity, unit_price)))
    counts_add_up(wh, report, 31)
    assert (report.rows_loaded, report.rows_rejected) == (30, 1)
    [bad] = wh.rejects("order_lines").itertuples()
    assert (bad.line, bad.column, bad.value) == (32, column, quantity if column == "quantity" else bad.value)
    assert reason in bad.reason and bad.reason.endswith("if real)")
    assert f"{column}: 1 × {reason}" in report.summary()


@pytest.mark.parametrize("quantity, unit_price", [
    ("100000", "1"), ("-100000", "1"), ("1", "10000000"), ("10", "10000000"), ("-10", "10000000"), ("0.001", "1e7"),
], ids=["quantity at the bound", "return at the bound", "unit price at the bound", "line amount at the bound",
        "returned line amount at the bound", "small quantity"])
def test_large_but_plausible_lines_still_load(tmp_path, wh, quantity, unit_price):
    report = wh.ingest("order_lines", orders_with(tmp_path, (quantity, unit_price)), max_reject_rate=0)
    counts_add_up(wh, report, 31)
    assert report.rows_loaded == 31 and report.problems.empty


@pytest.mark.parametrize("unit_price", ["NaN", "nan", "inf", "-inf", "Infinity", "1e400"])
def test_non_finite_prices_are_rejected_not_loaded(tmp_path, wh, unit_price):
    report = wh.ingest("order_lines", orders_with(tmp_path, ("1", unit_price)))
    counts_add_up(wh, report, 31)
    [bad] = wh.rejects("order_lines").itertuples()
    assert (bad.column, bad.value, bad.reason) == ("unit_price", unit_price, "not a number")
    assert wh.table("order_lines").unit_price.isinf().sum().to_pyarrow().as_py() == 0


def test_a_dataframe_is_bounded_like_a_file(wh):
    import numpy as np
    frame = pd.read_csv(io.StringIO(f"{HEADER}\n{ROW}\n"), dtype=str)
    frame = pd.concat([frame.assign(order_id=f"A{n}") for n in range(20)], ignore_index=True)
    frame["quantity"] = [1.0] * 17 + [1e12, np.inf, np.nan]
    report = wh.ingest("order_lines", frame, source_name="till", max_reject_rate=0.2)
    assert (report.rows_loaded, report.rows_rejected) == (17, 3)
    assert sorted(wh.rejects("order_lines").reason) == [
        "above max_quantity 100,000 in size (raise [warehouse] max_quantity if real)", "not a number",
        "required value missing"]


def test_a_raised_bound_reloads_the_file_and_keeps_the_line(tmp_path):
    f = orders_with(tmp_path, ("1e12", "0.7"))
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        assert wh.ingest("order_lines", f).rows_rejected == 1
        assert wh.ingest("order_lines", f).status == "unchanged"
    with Warehouse(tmp_path / "wh.duckdb", bounds={"max_quantity": 1e13, "max_line_amount": 1e12}) as wh:
        report = wh.ingest("order_lines", f)
        assert (report.status, report.rows_loaded, report.rows_rejected) == ("replaced", 31, 0)
        assert wh.table("order_lines").quantity.max().to_pyarrow().as_py() == 1e12
        assert wh.rejects("order_lines").empty


def settings_with(tmp_path, warehouse_lines, sections=""):
    "A lab's settings with `warehouse_lines` in its [warehouse] section and `sections` after it."
    f = tmp_path / "settings.ini"
    f.write_text(f"[warehouse]\npath = wh.duckdb\n{warehouse_lines}[run]\nas_of = 2024-06-30\n{sections}",
                 encoding="utf-8")
    return f


def test_bounds_come_from_settings_ini_and_reach_the_sources_check(tmp_path):
    orders_with(tmp_path, ("20", "3"), ("-12", "1"), ("10", "400"), good=40)
    settings = load_settings(settings_with(tmp_path, "max_quantity = 10\nmax_line_amount = 3000\nmax_reject_rate = 0.1\n",
                                           "[source.pos]\ntable = order_lines\npath = orders.csv\n"), env={})
    [check] = check_sources(settings)
    assert "2 of 43 rows above max_quantity 10 in size (raise [warehouse] max_quantity if real)" in check.summary()
    [report] = ingest_sources(settings)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (43, 40, 3)
    assert report.problems.set_index("column").rows.to_dict() == {"quantity": 2, "line_amount": 1}
    assert "line_amount: 1 × quantity × unit_price above max_line_amount 3,000 in size" in report.summary()


@pytest.mark.parametrize("key, value", [("max_quantity", "0"), ("max_quantity", "-5"), ("max_unit_price", "lots"),
                                        ("max_line_amount", "nan"), ("max_line_amount", "0.5")])
def test_a_bound_that_is_not_a_positive_number_names_the_setting(tmp_path, key, value):
    with pytest.raises(LoyaltyLabError, match=rf"settings.ini \[warehouse\] {key} = '{value}': expected a number.*>= 1"):
        load_settings(settings_with(tmp_path, f"{key} = {value}\n"), env={})


def test_inf_switches_a_bound_off(tmp_path):
    f = orders_with(tmp_path, ("1e12", "0.7"))
    settings = load_settings(settings_with(tmp_path, "max_quantity = inf\nmax_line_amount = inf\n"), env={})
    with Warehouse.open(settings) as wh:
        assert wh.ingest("order_lines", f, max_reject_rate=0).rows_loaded == 31


def test_a_derived_quantity_is_bounded_too(tmp_path):
    (tmp_path / "pos.csv").write_text("Racun;KupacID;DatumVreme;Kolicina;Iznos\nR1;K1;2024-05-01 10:00;2;10\n"
                                      + "".join(f"R{n};K1;2024-05-01 10:00;2;10\n" for n in range(2, 30))
                                      + "R99;K1;2024-05-01 10:00;3;10\n", encoding="utf-8")
    settings = lab(tmp_path, "[source.pos]\ntable = order_lines\npath = pos.csv\ndelimiter = ;\nsource_system = 'pos'\n"
                             "source_customer_id = KupacID\norder_id = Racun\nts = DatumVreme\n"
                             "quantity = Kolicina * 50000\nunit_price = Iznos\n")
    [report] = ingest_sources(settings)
    assert (report.rows_loaded, report.rows_rejected) == (29, 1)
    assert wh_rejects(settings).reason.tolist() == ["above max_quantity 100,000 in size (raise [warehouse] max_quantity "
                                                    "if real)"]


def wh_rejects(settings):
    with Warehouse.open(settings, read_only=True) as wh:
        return wh.rejects()


def test_every_row_is_loaded_or_rejected_in_a_file_with_every_kind_of_problem(tmp_path, wh):
    f = orders_with(tmp_path, ("1e12", "1"), ("1", "inf"), ("abc", "1"), ("50000", "5000"), ("1", "-3"), ("2", '"1,5"'),
                    good=200)
    report = wh.ingest("order_lines", f)
    counts_add_up(wh, report, 206)
    assert report.rows_rejected == 6


# --- ingest: order lines of customers without a profile are loaded and counted ---

def profiles(*ids, system="pos"):
    return pd.DataFrame({"source_system": system, "source_customer_id": list(ids), "signup_date": "2024-01-01"})


def customer_orders(tmp_path, customers):
    "One line per customer id in `customers` (repeats allowed), each for 2.5."
    rows = [ROW.replace("A1,", f"A{n},").replace(",C1,", f",{c},") for n, c in enumerate(customers)]
    f = tmp_path / "orders.csv"
    f.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    return f


def test_an_orders_only_shop_has_no_orphans(tmp_path, wh):
    report = wh.ingest("order_lines", customer_orders(tmp_path, ["C1", "C2", "C3"]))
    assert (report.rows_loaded, report.orphan_lines) == (3, 0) and "profile" not in report.summary()
    assert orphan_summary(wh) == {"lines": 0, "customers": 0, "revenue": 0.0, "revenue_share": 0.0}


def test_orphan_lines_are_loaded_counted_and_said(tmp_path, wh):
    wh.ingest("profiles", profiles("C1", "C2"), source_name="crm")
    report = wh.ingest("order_lines", customer_orders(tmp_path, ["C1", "C2", "C3", "C3", "C4", "C1"]))
    assert (report.rows_read, report.rows_loaded, report.rows_rejected, report.orphan_lines) == (6, 6, 0, 3)
    assert ("3 lines of customers without a profile (no profile has their source_system and source_customer_id): "
            "loaded, as real sales") in report.summary()
    assert orphan_summary(wh) == {"lines": 3, "customers": 2, "revenue": 7.5, "revenue_share": 0.5}


def test_profiles_loaded_with_the_orders_count_and_the_source_system_is_part_of_the_key(tmp_path, wh):
    orders = customer_orders(tmp_path, ["C1", "C2", "C3"])
    reports = wh.ingest_many([dict(table="order_lines", source=orders),
                              dict(table="profiles", source=profiles("C1"), source_name="crm"),
                              dict(table="profiles", source=profiles("C2", system="web"), source_name="web")])
    assert reports[0].orphan_lines == 2  # C2 has a web profile, but these are POS lines


def test_the_count_follows_the_profiles_on_the_next_load(tmp_path, wh):
    orders = customer_orders(tmp_path, ["C1", "C2", "C3"])
    wh.ingest("profiles", profiles("C1"), source_name="crm")
    assert wh.ingest("order_lines", orders).orphan_lines == 2
    wh.ingest("profiles", profiles("C1", "C2", "C3"), source_name="crm")
    report = wh.ingest("order_lines", orders)
    assert (report.status, report.orphan_lines) == ("unchanged", 0)
