"""The smallest useful input as a user declares it: a shop's order export with only customer, date and amount, under
its own column names (German, semicolons, decimal commas, day-first dates), declared in settings.ini — a real history (CDNOW, from the lifetimes wheel), not our generator's."""
import json
import textwrap

import pandas as pd
import pytest
from loyalty_lab.summary import cdnow

from lab_helpers import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cdnow_shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("cdnow-shop")
    orders = cdnow(sample=True)
    export = pd.DataFrame({"Kunde": orders.customer_id, "Datum": orders.ts.dt.strftime("%d.%m.%Y"),
                           "Betrag": orders.amount.map(lambda v: f"{v:.2f}".replace(".", ","))})
    export.to_csv(root / "bestellungen.csv", sep=";", index=False, encoding="utf-8")
    (root / "settings.ini").write_text(textwrap.dedent("""
        [warehouse]
        path = data/warehouse.duckdb
        [locale]
        currency = USD
        timezone = America/New_York
        [run]
        as_of = 1998-06-30
        [report]
        segments_file =
        [source.cdnow_orders]
        table = order_lines
        path = bestellungen.csv
        delimiter = ;
        decimal = ,
        date_format = %d.%m.%Y
        source_system = 'web'
        source_customer_id = Kunde
        ts = Datum
        unit_price = Betrag
        """), encoding="utf-8")
    out = cli("run", "--run-id", "cdnow", cwd=root, timeout=900)
    return root, orders, out


def test_an_orders_only_export_gets_a_complete_report(cdnow_shop):
    root, orders, out = cdnow_shop
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    folder = root / "reports" / "cdnow"
    html = (folder / "segment_report.html").read_text(encoding="utf-8")
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["customers"] == orders.customer_id.nunique() == 2357
    assert metrics["revenue"] == pytest.approx(orders.amount.sum(), rel=1e-9)
    assert "Traceback" not in html
    # the tables the shop does not have are named in the report and in metrics.json
    assert sorted(metrics["absent_tables"]) == ["interactions", "loyalty_ledger", "offers", "profiles"]
    assert all(table in html for table in metrics["absent_tables"])


def test_the_load_says_what_it_filled_in(cdnow_shop):
    _, orders, out = cdnow_shop
    assert f"{len(orders):,} rows loaded, 0 rejected" in out.stdout
    assert "filled with defaults: order_id = _file + ':' + _line, line_no = _line_in_order, channel = 'store'" in out.stdout
