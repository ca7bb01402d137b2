"""Bad input — ingest: files that are not what they claim, values no shop has, rows that do not belong."""
import codecs

import duckdb
import pytest
from loyalty_lab import LoyaltyLabError, Warehouse

HEADER = "order_id,line_no,source_system,source_customer_id,ts,channel,product_id,category,quantity,unit_price"
ROW = "A1,1,pos,C1,2024-05-01 10:00,store,P1,dairy,1,2.5"


# --- ingest: files that are not what they claim ---

@pytest.mark.parametrize("content, message", [
    (b"PK\x03\x04" + b"\x00" * 60, "this is a zip archive — an Excel workbook (.xlsx) under a .csv name?"),
    (codecs.BOM_UTF16_LE + f"{HEADER}\n{ROW}\n".encode("utf-16-le"), "the file is UTF-16 text (Excel's \"Unicode text\")"),
    (f"{HEADER}\n{ROW}\n".encode() + b"\x00" * 4096 + b"\n", "line 3 holds NUL bytes — a torn or binary copy"),
], ids=["xlsx renamed csv", "utf-16", "NUL block"])
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
