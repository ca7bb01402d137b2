"""The 360° view: hand-computed figures, nothing after as_of, pseudonymous output, erasure."""
import warnings

import pandas as pd
import pytest
from loyalty_lab import LoyaltyLabError
from loyalty_lab.config import load_settings
from loyalty_lab.contract import CONTRACT
from loyalty_lab.profiles import resolve_customers
from loyalty_lab.view360 import customer_360, forget
from loyalty_lab.warehouse import Warehouse


def table(name, rows):
    cols = CONTRACT[name].column_names
    return pd.DataFrame([{c: r.get(c, "") for c in cols} for r in rows]).fillna("")


def line(order, no, system, sid, ts, qty, price, discount=0, promo=False, category="baby"):
    return dict(order_id=order, line_no=no, source_system=system, source_customer_id=sid, ts=ts, channel="store",
                product_id="P" + category, category=category, quantity=qty, unit_price=price, discount=discount,
                on_promo=str(promo).lower(), promo_type="percent_discount" if promo else "none")


def event(i, system, sid, ts, kind, channel="email"):
    return dict(event_id=f"E{i}", source_system=system, source_customer_id=sid, ts=ts, channel=channel, event_type=kind)


@pytest.fixture()
def lab(tmp_path):
    s = load_settings(flags={"warehouse.path": str(tmp_path / "w.duckdb")}, env={})
    ana = [dict(source_system="pos", source_customer_id="77001", first_name="Ana", last_name="Ilić",
                phone="064 111 2223", birth_date="1990-07-15", city="Novi Sad", signup_date="2023-01-05",
                loyalty_card_number="77001"),
           dict(source_system="web", source_customer_id="W9", first_name="Ana", last_name="Ilic",
                phone="+381641112223", email="ana.ilic@gmail.com", birth_date="1990-07-15", city="Novi Sad",
                signup_date="2023-03-01")]
    others = [dict(source_system="crm", source_customer_id=f"B{i}", first_name=f"Osoba{i}", last_name="Test",
                   phone=f"06{i % 10}55{i:04d}", signup_date="2023-01-01") for i in range(30)]
    lines = [line("O1", 1, "pos", "77001", "2023-02-01 10:00:00", 2, 500, discount=100, promo=True),
             line("O1", 2, "pos", "77001", "2023-02-01 10:00:00", 1, 300, category="food"),
             line("O2", 1, "web", "W9", "2023-05-01 12:00:00", 1, 1000, category="food"),
             line("R1", 1, "web", "W9", "2023-05-10 12:00:00", -1, 1000, category="food"),
             line("O3", 1, "pos", "77001", "2024-02-01 09:00:00", 3, 200),
             line("O9", 1, "pos", "77001", "2030-01-01 09:00:00", 99, 9999)]  # planted in the future
    events = [event(1, "web", "W9", "2023-05-01 08:00:00", "email_sent"),
              event(2, "web", "W9", "2023-05-01 09:00:00", "email_open"),
              event(3, "web", "W9", "2023-06-01 08:00:00", "email_sent"),
              event(4, "web", "W9", "2023-06-02 08:00:00", "cart_add", "web"),
              event(5, "web", "W9", "2023-06-02 08:05:00", "cart_abandon", "web"),
              event(6, "web", "W9", "2030-06-02 08:05:00", "email_open")]
    ledger = [dict(entry_id="L1", source_system="pos", source_customer_id="77001", ts="2023-02-01 10:00:00",
                   entry_type="earn", points_earned=1000, tier="basic"),
              dict(entry_id="L2", source_system="pos", source_customer_id="77001", ts="2023-09-01 10:00:00",
                   entry_type="redeem", points_redeemed=400, reward="voucher", tier="silver"),
              dict(entry_id="L3", source_system="pos", source_customer_id="77001", ts="2030-01-01 10:00:00",
                   entry_type="tier_change", tier="gold")]
    with Warehouse(s.warehouse.path) as wh:
        wh.ingest("profiles", table("profiles", ana + others), source_name="p.csv")
        wh.ingest("order_lines", table("order_lines", lines), source_name="o.csv")
        wh.ingest("interactions", table("interactions", events), source_name="i.csv")
        wh.ingest("loyalty_ledger", table("loyalty_ledger", ledger), source_name="l.csv")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            resolve_customers(wh, s)
    return s


def ana(view):
    return view[view.orders > 0].iloc[0]


def test_hand_computed_customer_and_nothing_after_as_of(lab):
    view = customer_360(settings=lab, as_of="2024-06-30", include_pii=True)
    a = ana(view)
    assert (a.records, a.systems, a.first_name, a.age) == (2, 2, "Ana", 33)
    assert (a.orders, a.return_orders, a.purchase_days) == (3, 1, 3)
    assert a.gross_sales == 2 * 500 - 100 + 300 + 1000 + 600  # 2,800 net of the line discount
    assert a.returns_value == 1000 and a.net_revenue == 1800 and a.aov == pytest.approx(2800 / 3)
    assert a.promo_share == pytest.approx(900 / 2800) and a.discounts == 100 and a.top_category == "baby"
    assert (a.emails_sent, a.email_opens, a.email_open_rate, a.cart_abandon_rate) == (2, 1, 0.5, 1.0)
    assert (a.points_earned, a.points_redeemed, a.points_balance, a.tier, a.rewards) == (1000, 400, 600, "silver", 1)
    assert a.channels == "email,store,web" and a.days_since_last_purchase == (pd.Timestamp("2024-06-30") - pd.Timestamp("2024-02-01")).days
    assert len(view) == 31 and view.attrs["unattributed"]["order_lines"] == 0
    early = ana(customer_360(settings=lab, as_of="2023-02-15", include_pii=True))
    assert (early.orders, early.records, early.net_revenue, early.email_opens) == (1, 1, 1200, 0)  # web profile not yet created


def test_shared_view_has_no_pii_and_a_stable_pseudonymous_key(lab):
    shared = customer_360(settings=lab, as_of="2024-06-30")
    text = shared.astype(str).to_string()
    for secret in ("Ana", "Ilić", "ana.ilic@gmail.com", "064 111 2223", "+381641112223", "1990-07-15", "77001", "W9"):
        assert secret not in text
    again = customer_360(settings=lab, as_of="2024-06-30")
    assert shared.customer_key.tolist() == again.customer_key.tolist() and shared.customer_key.str.len().eq(16).all()
    salted = load_settings(flags={"warehouse.path": str(lab.warehouse.path), "privacy.pseudonym_salt": "another-long-secret"}, env={})
    assert set(customer_360(settings=salted, as_of="2024-06-30").customer_key).isdisjoint(shared.customer_key)


def test_forget_removes_the_person_everywhere_and_says_what(lab):
    cid = ana(customer_360(settings=lab, as_of="2024-06-30", include_pii=True, save=True)).customer_id
    removed = forget(cid, settings=lab)
    assert {k: removed[k] for k in ("raw_profiles", "raw_order_lines", "raw_interactions", "raw_loyalty_ledger",
                                    "crosswalk", "golden_records", "customer_360")} == {
        "raw_profiles": 2, "raw_order_lines": 6, "raw_interactions": 6, "raw_loyalty_ledger": 3,
        "crosswalk": 2, "golden_records": 1, "customer_360": 1}
    view = customer_360(settings=lab, as_of="2024-06-30", include_pii=True)
    assert cid not in set(view.customer_id) and "Ana" not in set(view.first_name) and len(view) == 30
    with Warehouse(lab.warehouse.path, read_only=True) as wh:
        audit = wh.con.table("customer_id_audit").to_pandas()
    assert audit.event.tolist()[-1] == "forgotten" and "Ana" not in audit.to_string()
    again = forget(cid, settings=lab)  # a repeat erases nothing more and says when it was forgotten
    assert again.forgotten_before and not any(again.values())
    with pytest.raises(LoyaltyLabError, match="no customer 'C99999999' in the crosswalk"):
        forget("C99999999", settings=lab)


def test_view_before_any_merge_says_what_to_do(tmp_path):
    s = load_settings(flags={"warehouse.path": str(tmp_path / "w.duckdb")}, env={})
    Warehouse(s.warehouse.path).close()
    with pytest.raises(LoyaltyLabError, match="merge the profiles first"):
        customer_360(settings=s)


def test_forget_after_a_merge_that_linked_nobody(tmp_path):
    "Found by a new user: a merge without links stored its empty links typed INTEGER, and forget failed on them."
    profiles = pd.DataFrame({"source_system": ["crm"] * 3, "source_customer_id": ["1", "2", "3"],
                             "first_name": ["Ana", "Boris", "Vera"], "last_name": ["Ilić", "Kovač", "Marić"],
                             "signup_date": ["2024-01-01"] * 3})
    settings = load_settings(flags={"warehouse.path": str(tmp_path / "wh.duckdb")}, env={})
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        wh.ingest("profiles", profiles, source_name="crm")
        resolve_customers(wh, settings)
        assert wh.con.table("profile_links").schema()["a"].is_string()
        preview = forget("C00000002", wh, dry_run=True)
        assert preview["raw_profiles"] == 1 and wh.table("profiles").count().to_pyarrow().as_py() == 3
        assert forget("C00000002", wh) == preview and wh.table("profiles").count().to_pyarrow().as_py() == 2


def test_compaction_works_inside_a_jupyter_kernel(tmp_path):
    "In JupyterLab DuckDB refuses `SET enable_progress_bar` without ipywidgets; `forget` compacts there too."
    import nbformat
    from nbclient import NotebookClient
    path = tmp_path / "wh.duckdb"
    code = (f"from loyalty_lab.warehouse import Warehouse\nwith Warehouse({str(path)!r}) as wh:\n"
            "    print(wh.compact() >= 0)")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, kernel_name="loyalty-lab", timeout=120).execute()
    assert nb.cells[0].outputs[0]["text"].strip() == "True"
