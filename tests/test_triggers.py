"""Trigger lists on the sample: known answers built from single events of the warehouse (an abandoned cart
fires only between N hours and N hours + a period after it, a welcome the day after a first purchase),
consent respected, pseudonymous keys in the CSV, and the command line."""
import pandas as pd
import pytest

from loyalty_lab import LoyaltyLabError, TriggerRules, Warehouse, customer_360, trigger_lists
from loyalty_lab.profiles import merged_crosswalk
from loyalty_lab.view360 import _attributed

from lab_helpers import cli, merged_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    s = merged_lab(tmp_path_factory.mktemp("triggers"))
    return s.file.parent, s


def _fired(s, as_of, trigger):
    with Warehouse.open(s, read_only=True) as wh:
        out = trigger_lists(wh, s, as_of=as_of, include_pii=True, rules=TriggerRules())
    return out[out.trigger == trigger]


def test_an_abandoned_cart_fires_once_after_n_hours_unless_the_customer_bought(lab):
    root, s = lab
    with Warehouse.open(s, read_only=True) as wh:
        e = _attributed(wh.table("interactions"), merged_crosswalk(wh))
        carts = e.filter(e.event_type == "cart_abandon").select("customer_id", "ts").to_pandas()
        view = customer_360(wh, s, include_pii=True).set_index("customer_id")
        consented = view.index[view.consent_push.fillna(False) | view.consent_email.fillna(False) | view.consent_sms.fillna(False)]
    # a cart whose owner bought nothing afterwards (by the end of the data) and may be contacted
    last = view.last_purchase.reindex(carts.customer_id).to_numpy()
    quiet = carts[(pd.isna(last) | (last < carts.ts.to_numpy())) & carts.customer_id.isin(consented)]
    quiet = quiet[~quiet.customer_id.duplicated(keep=False)].iloc[0]
    hours = lambda h: (quiet.ts + pd.Timedelta(hours=h)).isoformat()
    assert quiet.customer_id in set(_fired(s, hours(3), "cart_abandoned").customer_id)
    assert quiet.customer_id not in set(_fired(s, hours(1), "cart_abandoned").customer_id)   # too early
    assert quiet.customer_id not in set(_fired(s, hours(27), "cart_abandoned").customer_id)  # yesterday's run had it
    # a cart followed by a purchase never fires
    bought = carts[(last > carts.ts.to_numpy())].iloc[0]
    later = (bought.ts + pd.Timedelta(hours=3)).isoformat()
    rows = _fired(s, later, "cart_abandoned")
    if bought.customer_id in set(rows.customer_id):  # only if the purchase came after the reminder was due
        with Warehouse.open(s, read_only=True) as wh:
            v = customer_360(wh, s, as_of=later, include_pii=True).set_index("customer_id")
        assert pd.isna(v.last_purchase[bought.customer_id]) or v.last_purchase[bought.customer_id] < bought.ts


def test_welcome_nudges_birthdays_and_consent(lab):
    root, s = lab
    as_of = "2024-06-20 10:00"
    with Warehouse.open(s, read_only=True) as wh:
        view = customer_360(wh, s, as_of=as_of, include_pii=True).set_index("customer_id")
        lists = trigger_lists(wh, s, as_of=as_of, include_pii=True)
    tz = s.locale.timezone
    first_day = view.first_purchase.dt.tz_convert(tz).dt.date
    welcomed = set(view.index[first_day == pd.Timestamp("2024-06-19").date()])
    contactable = set(view.index[view.consent_email.fillna(False) | view.consent_push.fillna(False) | view.consent_sms.fillna(False)])
    assert set(lists.customer_id[lists.trigger == "welcome"]) == welcomed & contactable and welcomed
    for row in lists.itertuples():
        assert bool(view.loc[row.customer_id, f"consent_{row.channel}"]), row
    nudges = lists[lists.trigger.str.startswith("nudge_")]
    waited = nudges.fired_at.reset_index(drop=True) - view.last_purchase[nudges.customer_id].reset_index(drop=True)
    assert len(nudges) and waited.isin([pd.Timedelta(days=d) for d in (14, 30, 45, 90)]).all()
    born = pd.to_datetime(view.birth_date[lists.customer_id[lists.trigger == "birthday"]])
    assert len(born) and born.map(lambda d: (d.month, d.day)).isin([(6, d) for d in range(17, 24)]).all()
    assert sum(lists.attrs["suppressed"].values()) > 0
    with pytest.raises(LoyaltyLabError, match="nudge_days .*keys are lifecycle stages"):
        TriggerRules(nudge_days={"dormant": 10})


def test_command_line_writes_a_csv_with_pseudonymous_keys(lab):
    root, _ = lab
    done = cli("triggers", "--out", "out/triggers.csv", "--as-of", "2024-06-30 20:00", cwd=root)
    assert done.returncode == 0, done.stderr
    assert "birthday" in done.stdout and "without consent left out" in done.stdout
    table = pd.read_csv(root / "out" / "triggers.csv")
    assert list(table.columns[:3]) == ["customer_key", "trigger", "fired_at"] and len(table) > 10
    assert table.customer_key.str.fullmatch(r"[0-9a-f]{16}").all() and not table.message.str.contains("@").any()
    assert table.offer.notna().all() and (table.content != "our best sellers").any()
    bad = cli("triggers", "--out", "x.csv", "--cart-hours", "-1", cwd=root)
    assert bad.returncode == 2 and "cart_abandoned_hours = -1.0; it must be positive" in bad.stderr
