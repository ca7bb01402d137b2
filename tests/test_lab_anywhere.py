"""Issue 18's 'done when': a lab folder made by `loyalty-lab init` outside any checkout, three exports of different
shapes declared in its settings.ini (a POS export in cp1250 with ';' and decimal commas, split by year; a web
shop's export in UTF-8; a CRM's profiles in Parquet), and `loyalty-lab run` there writes the report."""
import configparser
import json

import pandas as pd
import pytest

from lab_helpers import SAMPLE, cli

pytestmark = pytest.mark.slow

SOURCES = """
[source.pos_orders]
table = order_lines
path = exports/pos/racuni_*.csv
encoding = cp1250
delimiter = ;
decimal = ,
date_format = %d.%m.%Y %H:%M:%S
source_system = 'pos'
source_customer_id = KupacID
order_id = Racun
line_no = Stavka
ts = DatumVreme
store_id = Prodavnica
product_id = Sifra
category = Grupa
quantity = Kolicina
unit_price = Iznos / Kolicina
discount = Popust

[source.webshop_orders]
table = order_lines
path = exports/webshop/orders.csv
timezone = Europe/Belgrade
source_system = 'web'
source_customer_id = account
order_id = order_number
line_no = line
ts = created_at
channel = 'web'
product_id = sku
category = `product type`
quantity = qty
unit_price = price
discount = discount

[source.crm_customers]
table = profiles
path = exports/crm/customers.parquet
source_system = System
source_customer_id = ContactId
first_name = FirstName
last_name = LastName
email = Email
phone = MobilePhone
birth_date = Birthdate
gender = Gender
address = Street
city = City
postcode = Zip
country = Country
signup_date = CreatedDate
loyalty_card_number = CardNo
"""


def write_exports(lab):
    lines = pd.read_csv(SAMPLE / "order_lines.csv", dtype=str, keep_default_na=False)
    pos = lines[lines.source_system == "pos"]
    ts = pd.to_datetime(pos.ts)
    comma = lambda s: s.str.replace(".", ",", regex=False)
    export = pd.DataFrame({
        "Racun": pos.order_id, "Stavka": pos.line_no, "KupacID": pos.source_customer_id,
        "DatumVreme": ts.dt.strftime("%d.%m.%Y %H:%M:%S"), "Prodavnica": pos.store_id, "Sifra": pos.product_id,
        "Grupa": pos.category, "Kolicina": comma(pos.quantity),
        "Iznos": comma((pos.quantity.astype(float) * pos.unit_price.astype(float)).round(6).astype(str)),
        "Popust": comma(pos.discount)})
    (lab / "exports" / "pos").mkdir(parents=True)
    for year, part in export.groupby(ts.dt.year):
        part.to_csv(lab / "exports" / "pos" / f"racuni_{year}.csv", sep=";", index=False, encoding="cp1250")
    web = lines[lines.source_system == "web"]
    (lab / "exports" / "webshop").mkdir(parents=True)
    pd.DataFrame({"order_number": web.order_id, "line": web.line_no, "account": web.source_customer_id,
                  "created_at": web.ts, "sku": web.product_id, "product type": web.category, "qty": web.quantity,
                  "price": web.unit_price, "discount": web.discount}).to_csv(
        lab / "exports" / "webshop" / "orders.csv", index=False, encoding="utf-8")
    p = pd.read_csv(SAMPLE / "profiles.csv", dtype=str, keep_default_na=False)
    (lab / "exports" / "crm").mkdir(parents=True)
    pd.DataFrame({"System": p.source_system, "ContactId": p.source_customer_id, "FirstName": p.first_name,
                  "LastName": p.last_name, "Email": p.email, "MobilePhone": p.phone, "Birthdate": p.birth_date,
                  "Gender": p.gender, "Street": p.address, "City": p.city, "Zip": p.postcode, "Country": p.country,
                  "CreatedDate": p.signup_date, "CardNo": p.loyalty_card_number}).to_parquet(
        lab / "exports" / "crm" / "customers.parquet", index=False)
    return pos, web


def declare_only_the_exports(lab):
    "The init settings with its sample sources replaced by the three exports."
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(lab / "settings.ini", encoding="utf-8")
    text = (lab / "settings.ini").read_text(encoding="utf-8")
    for section in [s for s in ini.sections() if s.startswith("source.")]:
        start = text.index(f"[{section}]")
        end = text.index("\n\n", start)
        text = text[:start] + text[end + 2:]
    text = text.replace("segments_file = segments.yaml", "segments_file =")
    (lab / "settings.ini").write_text(SOURCES + "\n" + text, encoding="utf-8")


def test_three_exports_of_different_shapes_make_a_report_in_a_lab_folder(tmp_path):
    lab = tmp_path / "mylab"
    assert cli("init", str(lab), cwd=tmp_path).returncode == 0
    pos, web = write_exports(lab)
    declare_only_the_exports(lab)
    check = cli("sources", "--check", cwd=lab)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "pos_orders → order_lines: 2 files (exports/pos/racuni_2023.csv … exports/pos/racuni_2024.csv)" in check.stdout
    done = cli("run", "--run-id", "exports", cwd=lab, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name, n in (("exports/pos/racuni_2023.csv", None), ("exports/webshop/orders.csv", len(web)),
                    ("exports/crm/customers.parquet", None)):
        assert f"← {name}: loaded, " in done.stdout
    assert f"order_lines ← exports/webshop/orders.csv: loaded, {len(web):,} rows loaded, 0 rejected" in done.stdout
    folder = lab / "reports" / "exports"
    assert (folder / "segment_report.html").stat().st_size > 100_000
    metrics = json.loads((folder / "metrics.json").read_text())
    # the same lines as the sample's pos and web lines: revenue is theirs (line totals divided back into prices)
    both = pd.concat([pos, web])
    q = both.quantity.astype(float)  # a return line repeats the sale's discount: it is refunded with the sign
    revenue = (q * both.unit_price.astype(float) - both.discount.astype(float) * q.apply(lambda v: (v > 0) - (v < 0))).sum()
    assert metrics["revenue"] == pytest.approx(revenue, rel=1e-6)
