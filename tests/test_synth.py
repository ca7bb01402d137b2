"""The synthetic programme: deterministic, in the contract, and meaning what its truth says."""
import hashlib
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from loyalty_lab import LoyaltyLabError, SynthConfig, Warehouse, generate, synth
from loyalty_lab.synth import Noise

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "loyalty-lab")


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        synth(300, seed, tmp_path / name)
    a, b, c = (digests(tmp_path / n) for n in "abc")
    assert a == b
    assert len(a) == 2 * (5 + 3) + 1  # csv + parquet of 5 tables and 3 truth tables, and config.json
    assert a["order_lines.csv"] != c["order_lines.csv"] and a["truth/people.parquet"] != c["truth/people.parquet"]


def test_every_generated_row_meets_the_contract(tmp_path):
    synth(1500, 9, tmp_path / "p", ("csv",))
    synth(1500, 9, tmp_path / "q", ("parquet",))
    with Warehouse(tmp_path / "wh.duckdb", timezone="Europe/Belgrade") as wh:
        for table in ("profiles", "order_lines", "interactions", "loyalty_ledger", "offers"):
            csv = wh.ingest(table, tmp_path / "p" / f"{table}.csv", as_of="2024-06-30", max_reject_rate=0)
            assert csv.rows_rejected == 0 and csv.rows_loaded > 0, csv.summary()
            par = wh.ingest(table, tmp_path / "q" / f"{table}.parquet", source_name=f"{table}-parquet",
                            max_reject_rate=1)
            assert par.rows_read == csv.rows_read
            # the parquet copy has the same keys, so every row is refused as already loaded from the CSV
            assert set(par.problems.reason) == {f"primary key already loaded from {tmp_path / 'p' / (table + '.csv')}"}


def test_shipped_sample_is_this_generator_at_seed_42():
    sample = REPO / "data" / "sample"
    prog = generate(customers=2000, seed=42)
    for table in ("profiles", "offers"):
        shipped = pd.read_csv(sample / f"{table}.csv", dtype=str, keep_default_na=False)
        assert len(shipped) == prog.tables[table].num_rows
        assert shipped.source_customer_id.tolist() == prog.tables[table]["source_customer_id"].to_pylist()
    assert (sample / "truth" / "people.csv").is_file() and (sample / "truth" / "profiles.csv").is_file()


@pytest.fixture(scope="module")
def big():
    "50,000 people: enough for parameter recovery and rate checks."
    return generate(customers=50_000, seed=2024)


def btyd_summary(prog) -> pd.DataFrame:
    "frequency / recency / T in weeks from the organic orders, same-day purchases counted once."
    o = prog.table("order_lines").query("quantity > 0")[["order_id", "ts"]].drop_duplicates("order_id")
    o = o.merge(prog.truth["orders"].query("kind == 'organic'"), on="order_id")
    o["day"] = o.ts.dt.normalize()
    end = pd.Timestamp(prog.config.end) + pd.Timedelta(days=1)
    g = o.groupby("person_id").day.agg(["min", "max", "nunique"])
    return pd.DataFrame({"frequency": g["nunique"] - 1, "recency": (g["max"] - g["min"]).dt.days / 7,
                         "T": (end - g["min"]).dt.days / 7})


def test_bg_nbd_recovers_the_latent_parameters(big):
    from lifetimes import BetaGeoFitter
    s = btyd_summary(big)
    assert len(s) == 50_000  # everybody made the acquisition purchase
    w = s.groupby(["frequency", "recency", "T"]).size().rename("n").reset_index()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = BetaGeoFitter().fit(w["frequency"], w["recency"], w["T"], weights=w["n"]).params_
    cfg = big.config
    # r, a, b within 10 %; alpha within 15 %: counting same-day purchases once (as the BTYD literature
    # does) merges a few of the fastest buyers' purchases, which biases the rate down, alpha up (~+11 %)
    assert fit["r"] == pytest.approx(cfg.r, rel=0.10)
    assert fit["alpha"] == pytest.approx(cfg.alpha, rel=0.15)
    assert fit["a"] == pytest.approx(cfg.a, rel=0.10)
    assert fit["b"] == pytest.approx(cfg.b, rel=0.10)


def within(observed: float, rate: float, n: int) -> bool:
    "Observed share within 4 binomial standard errors of the configured rate."
    return abs(observed - rate) <= 4 * np.sqrt(rate * (1 - rate) / n) + 1e-9


def test_profile_noise_rates_match_the_configuration(big):
    truth, nz = big.truth["profiles"], big.config.noise
    n = len(truth)
    for flag, rate in (("duplicate_in_source", nz.duplicate_in_source), ("typo", nz.typo),
                       ("swapped", nz.swap_names), ("email_variant", nz.email_variant), ("moved", nz.moved),
                       ("surname_changed", nz.surname_change)):
        assert within(truth[flag].mean(), rate, n), (flag, truth[flag].mean(), rate)
    assert truth.missing.mean() == pytest.approx(5 * nz.missing, abs=0.02)  # five optional fields
    # nicknames exist for some first names only: the rate holds among the profiles of those people
    from loyalty_lab.synth import NICKNAMES
    people = big.truth["people"].set_index("person_id")
    eligible = truth.person_id.map(people.first_name).isin(NICKNAMES)
    assert within(truth.nickname[eligible].mean(), nz.nickname, eligible.sum()), truth.nickname[eligible].mean()
    assert not truth.nickname[~eligible].any()
    # systems per person (duplicates aside) follow profiles_per_person
    per_person = truth[~truth.duplicate_in_source].groupby("person_id").size().value_counts(normalize=True).sort_index()
    assert np.allclose(per_person.to_numpy(), big.config.profiles_per_person, atol=0.01)


def test_names_come_in_the_scripts_the_truth_says(big):
    profiles = big.table("profiles").merge(big.truth["profiles"], on=["source_system", "source_customer_id"])
    clean = profiles[~profiles.swapped & ~profiles.typo]
    cyrillic = clean.first_name.str.contains("[\u0400-\u04ff]", regex=True)
    assert cyrillic[clean.script == "cyrillic"].all()
    assert not cyrillic[clean.script.isin(["latin", "ascii"])].any()
    assert clean[clean.script == "ascii"].last_name.map(str.isascii).all()
    people = big.truth["people"].set_index("person_id")
    serbian = clean[clean.person_id.map(people.locale) == "sr"]
    shares = serbian.script.value_counts(normalize=True)
    assert shares["latin"] == pytest.approx(0.6, abs=0.02) and shares["cyrillic"] == pytest.approx(0.25, abs=0.02)
    # the same person in Latin in one system and Cyrillic in another
    both = serbian.groupby("person_id").script.agg(set).map(lambda s: {"latin", "cyrillic"} <= s)
    assert both.sum() > 1000


def test_offer_redemptions_show_the_designed_effect(big):
    offers = big.table("offers").merge(big.truth["profiles"], on=["source_system", "source_customer_id"])
    offers = offers.join(big.truth["people"].set_index("person_id")[["preferred_offer"]], on="person_id")
    control = offers[offers.group == "control"]
    treated = offers[offers.group == "treatment"]
    assert control.redeemed_at.isna().all() and (control.offer_type == "none").all()
    assert len(control) / len(offers) == pytest.approx(big.config.control_share, abs=0.01)
    # offer types are assigned at random: independent of the true preference
    mix = pd.crosstab(treated.preferred_offer, treated.offer_type, normalize="index")
    assert np.allclose(mix.to_numpy(), 0.25, atol=0.03)
    redeemed = treated.redeemed_at.notna()
    preferred = treated.offer_type.astype(str) == treated.preferred_offer
    assert redeemed[preferred].mean() > 2.5 * redeemed[~preferred].mean()
    # people whose true preference is "none" barely respond to anything
    none = treated.preferred_offer == "none"
    assert redeemed[none].mean() < 0.5 * redeemed[~none].mean()
    # every redemption is an order carrying that promotion
    lines = big.table("order_lines")
    red = treated[redeemed].merge(lines.drop_duplicates("order_id")[["order_id", "promo_type"]], on="order_id")
    assert len(red) == redeemed.sum() and (red.promo_type.astype(str) == red.offer_type.astype(str)).all()


def test_bad_configuration_is_refused():
    with pytest.raises(LoyaltyLabError, match="customers = 0 \\(need at least 1\\)"):
        SynthConfig(customers=0)
    with pytest.raises(LoyaltyLabError, match="noise.typo = 1.5 \\(need 0…1\\)"):
        SynthConfig(noise=Noise(typo=1.5))
    with pytest.raises(LoyaltyLabError, match="end 2023-01-01 is not after start 2024-01-01"):
        SynthConfig(start="2024-01-01", end="2023-01-01")


def test_cli(tmp_path):
    done = subprocess.run([CLI, "synth", "--customers", "150", "--seed", "3", "--out", str(tmp_path / "out"),
                           "--format", "csv"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "interactions.csv", "loyalty_ledger.csv", "offers.csv", "order_lines.csv", "profiles.csv", "truth"]
    people = pd.read_csv(tmp_path / "out" / "truth" / "people.csv")
    assert len(people) == 150 and {"lambda_week", "p_dropout", "nu", "archetype", "preferred_offer", "first_name",
                                   "email", "phone", "birth_date"} <= set(people.columns)
    bad = subprocess.run([CLI, "synth", "--customers", "0", "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert bad.returncode == 2 and "customers = 0" in bad.stderr


def test_a_mailbox_and_a_phone_number_belong_to_one_person(big):
    people = big.truth["people"]
    assert people.email.is_unique and people.phone.is_unique
    profiles = big.table("profiles").merge(big.truth["profiles"], on=["source_system", "source_customer_id"])
    digits = profiles.phone.astype(str).str.replace(r"\D", "", regex=True).str[-9:]
    shared = profiles.assign(d=digits)[digits.str.len() == 9].groupby("d").person_id.nunique()
    assert shared.max() == 1


def test_shape_options_make_other_shops_and_refuse_nonsense():
    "categories, stores, channels, tables and one_time_buyers; campaigns = 0 raised IndexError (float person index)."
    shop = generate(customers=120, seed=3, categories=1, stores=1, channels=1, one_time_buyers=True, campaigns=0,
                    tables=("order_lines", "profiles"))
    lines = shop.table("order_lines")
    assert list(shop.tables) == ["profiles", "order_lines"]
    assert set(lines.category) == {"dairy"} and set(lines.channel) == {"store"} and set(lines.store_id) == {"S011"}
    bought = lines[lines.quantity > 0]
    assert bought.order_id.nunique() == 120 == bought.groupby("order_id").ts.first().size  # one order per person
    assert (shop.truth["orders"].kind == "organic").all()
    two = generate(customers=120, seed=3, categories=3, channels=2).table("order_lines")
    assert set(two.category) == {"dairy", "bakery", "produce"} and set(two.channel) == {"store", "web"}
    assert set(two.source_system) >= {"pos", "web", "app"}  # app customers' orders are web orders, still from their app profile
    with pytest.raises(LoyaltyLabError, match=r"categories = 0 \(need 1…10\); stores = 30 \(need 1…24\); channels = 4 "
                                              r"\(need 1…3: store, web, app\); tables = \('offers',\) \(need order_lines"):
        SynthConfig(categories=0, stores=30, channels=4, tables=("offers",))
