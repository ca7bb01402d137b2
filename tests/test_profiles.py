"""Profile standardisation and the deterministic pass: keys, block-list, singletons, scores on the truth."""
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from loyalty_lab import LoyaltyLabError
from loyalty_lab.contract import CONTRACT
from loyalty_lab.profiles import cluster_records, deterministic_links, pairwise_scores, standardise

REPO = Path(__file__).resolve().parents[1]


def profiles(rows: list[dict]) -> ibis.Table:
    cols = CONTRACT["profiles"].column_names
    frame = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows]).astype({c: "string" for c in cols})
    frame["birth_date"] = pd.to_datetime(frame.birth_date)
    frame["signup_date"] = pd.to_datetime(frame.signup_date)
    return ibis.memtable(frame)


def person(system, sid, first, last, email=None, phone=None, card=None):
    return dict(source_system=system, source_customer_id=sid, first_name=first, last_name=last, email=email,
                phone=phone, loyalty_card_number=card, signup_date="2024-01-01")


def test_one_person_in_three_scripts_and_phone_formats_is_one_customer():
    t = profiles([person("app", "A1", "Ђорђе", "Ђорђевић", phone="064/123-4567"),
                  person("pos", "77001", "Đorđe", "Đorđević", phone="+381 64 123 4567", card="77001"),
                  person("web", "W1", "Djordje", "Djordjevic", email="Djordje.D+shop@gmail.com", phone="00381641234567"),
                  person("crm", "CRM-1", "Djordje", "Djordjevic", email="djordjed@googlemail.com")])
    std = standardise(t).to_pandas()
    assert set(std.first_key) == {"djordje"} and set(std.last_key) == {"djordjevic"}
    assert set(std.phone_e164.dropna()) == {"+381641234567"} and set(std.email_key.dropna()) == {"djordjed@gmail.com"}
    clusters, blocked = deterministic_links(standardise(t))
    assert clusters.cluster.nunique() == 1 and blocked.empty


def test_household_email_and_junk_values_link_nobody():
    family = [person("web", f"W{i}", name, "Ilić", email="porodica.ilic@gmail.com", phone=f"06{i}1112223")
              for i, name in enumerate(["Ana", "Marko", "Jelena", "Luka"])]
    junk = [person("pos", f"P{i}", name, "X", phone="0000000", email="test@firma.rs")
            for i, name in enumerate(["Ivan", "Ivana"])]
    clusters, blocked = deterministic_links(standardise(profiles(family + junk)))
    assert clusters.cluster.nunique() == 6  # nobody linked
    assert blocked[["identifier", "value", "records", "first_names"]].values.tolist() == [
        ["email_key", "porodicailic@gmail.com", 4, 4]]


def test_records_without_identifiers_are_flagged_and_kept_as_singletons():
    t = profiles([person("pos", "P1", None, None, phone="12"), person("pos", "P2", "Ana", None),
                  person("web", "W1", "Ana", "Ilić", phone="not a phone")])
    std = standardise(t).order_by("record_id").to_pandas()
    assert std.no_identifier.tolist() == [True, True, False]
    assert std.phone_unreadable.tolist() == [True, False, True]
    clusters, _ = deterministic_links(standardise(t))
    assert len(clusters) == 3 and clusters.cluster.nunique() == 3 and clusters.linked_by.isna().all()


def test_duplicate_record_ids_are_refused():
    with pytest.raises(LoyaltyLabError, match=r"record ids appear twice: \['pos:1'\]"):
        cluster_records(pd.Series(["pos:1", "pos:1", "web:2"]), pd.DataFrame({"a": [], "b": []}))


def test_unknown_default_country_is_refused():
    with pytest.raises(LoyaltyLabError, match="default_country = XX: no calling code known.*e.g. RS, AU"):
        standardise(profiles([person("pos", "P1", "Ana", "Ilić")]), "XX")


@pytest.mark.parametrize("country, written, e164, kind", [
    ("AU", "0412 345 678", "+61412345678", "mobile"), ("AU", "(02) 9374 4000", "+61293744000", "fixed"),
    ("DE", "030 1234567", "+49301234567", "fixed"), ("PL", "601 234 567", "+48601234567", "mobile"),
    ("US", "(201) 555-0123", "+12015550123", "fixed_or_mobile"), ("RS", "+61 412 345 678", "+61412345678", "mobile")])
def test_phones_of_any_country_through_phonenumbers(country, written, e164, kind):
    "Issue 21: E.164 for every country (default_country = AU was refused by the hand-kept table of 15 codes)."
    std = standardise(profiles([person("pos", "P1", "Ana", "Ilić", phone=written)]), country).to_pandas().iloc[0]
    assert (std.phone_e164, std.phone_type) == (e164, kind)
    assert std.phone_country == phonenumbers_region(e164) and std.phone_valid


def phonenumbers_region(e164):
    import phonenumbers
    return phonenumbers.region_code_for_number(phonenumbers.parse(e164))


def test_the_record_country_reads_its_national_numbers():
    rows = [dict(person("pos", "P1", "Ana", "Ilić", phone="0412 345 678"), country="AU"),
            dict(person("pos", "P2", "Ana", "Ilić", phone="064 123 4567"), country=None)]
    std = standardise(profiles(rows), "RS").order_by("record_id").to_pandas()
    assert std.phone_e164.tolist() == ["+61412345678", "+381641234567"] and std.phone_valid.all()


def test_address_keys_across_scripts_and_abbreviations():
    rows = [dict(person("pos", f"P{i}", "Ana", "Ilić"), address=a, postcode=pc) for i, (a, pc) in enumerate(
        [("ул. Кнеза Милоша 12а", "11 000"), ("Kneza Miloša 12A, stan 4", "11000"), ("Hauptstr. 5", "10115"),
         ("Hauptstraße 5", "10115"), ("12 Main St, Apt 3", "NSW 2000"), ("12 Main Street", "nsw2000")])]
    std = standardise(profiles(rows)).order_by("record_id").to_pandas()
    assert std.street_key.tolist() == ["kneza milosa"] * 2 + ["haupctrasse"] * 2 + ["main street"] * 2
    assert std.house_number.tolist() == ["12a", "12a", "5", "5", "12", "12"]
    assert std.postcode_key.tolist() == ["11000"] * 2 + ["10115"] * 2 + ["NSW2000"] * 2


def test_deterministic_pass_on_a_generated_programme():
    from loyalty_lab import generate
    prog = generate(customers=5000, seed=31)
    raw = prog.table("profiles").replace("", None)
    raw["birth_date"] = pd.to_datetime(raw.birth_date)
    clusters, _ = deterministic_links(standardise(ibis.memtable(raw)))
    truth = prog.truth["profiles"].assign(record_id=lambda t: t.source_system + ":" + t.source_customer_id)
    scored = clusters.merge(truth[["record_id", "person_id"]], on="record_id", validate="one_to_one")
    s = pairwise_scores(scored.cluster, scored.person_id)
    assert s["precision"] > 0.99 and s["recall"] > 0.95


def test_both_passes_reach_the_accuracy_floor_on_a_generated_programme():
    from loyalty_lab import generate
    from loyalty_lab.profiles import MergeOptions, merge_profiles
    prog = generate(customers=5000, seed=77)
    raw = prog.table("profiles").replace("", None)
    raw["birth_date"] = pd.to_datetime(raw.birth_date)
    clusters, stats = merge_profiles(ibis.memtable(raw), MergeOptions(threshold=0.95))
    truth = prog.truth["profiles"].assign(record_id=lambda t: t.source_system + ":" + t.source_customer_id)
    scored = clusters.merge(truth[["record_id", "person_id"]], on="record_id", validate="one_to_one")
    s = pairwise_scores(scored.cluster, scored.person_id)
    assert s["f1"] >= 0.98, s
    assert stats["largest_cluster"] <= 2 * truth.groupby("person_id").size().max()
    assert stats["records"] == len(raw) and stats["customers"] == scored.cluster.nunique()
    assert set(clusters.linked_by.dropna()) <= {"card_key", "email_key", "phone_e164", "probabilistic"}


def test_match_threshold_must_be_a_probability():
    from loyalty_lab.profiles import probabilistic_links
    with pytest.raises(LoyaltyLabError, match="match threshold 1.5: must be between 0 and 1"):
        probabilistic_links(pd.DataFrame(), threshold=1.5)


def test_golden_record_survivorship_and_lineage():
    from loyalty_lab.profiles import golden_records
    rows = [dict(person("web", "W1", "Jelena", "Petrović", email="old@mts.rs", phone="0641111111"), signup_date="2023-01-01"),
            dict(person("pos", "P1", "Jelena", "Petrovic", email="new@mts.rs", card="7700000001"), signup_date="2024-03-01"),
            dict(person("crm", "C1", "Jeca", "Petrović", email=None, phone=" "), signup_date="2023-06-01")]
    t = profiles(rows)
    clusters = pd.DataFrame({"record_id": ["web:W1", "pos:P1", "crm:C1"], "cluster": "c1"})
    g = golden_records(t, clusters).iloc[0]
    assert (g.first_name, g.first_name_source) == ("Jelena", "pos:P1")  # 2 of 3 agree; tie on value → POS over web
    assert (g.last_name, g.last_name_source) == ("Petrović", "crm:C1")  # 'Petrović' twice; CRM has priority
    assert (g.email, g.email_source) == ("new@mts.rs", "pos:P1")  # most recent non-empty
    assert (g.phone, g.phone_source) == ("0641111111", "web:W1")  # the blank CRM phone does not survive
    assert (g.loyalty_card_number, g.records, g.systems) == ("7700000001", 3, 3)
    g2 = golden_records(t, clusters, rules={"first_name": "source_priority"}).iloc[0]
    assert (g2.first_name, g2.first_name_source) == ("Jeca", "crm:C1")
    with pytest.raises(LoyaltyLabError, match="survivorship rules .*'email': 'newest'"):
        golden_records(t, clusters, rules={"email": "newest"})


def test_oversized_clusters_are_reported():
    from loyalty_lab.profiles import MergeOptions, merge_profiles
    # six people share one card number typed in by a cashier: the card links them all
    rows = [person("pos", f"P{i}", name, "Kostić", phone=f"06{i}5556667", card="7700000099")
            for i, name in enumerate(["Ana", "Ana", "Ana", "Ana", "Ana", "Ana"])]
    rows += [person("web", f"W{i}", f"Osoba{i}", "Nikolić", phone=f"069{i}123456", email=f"o{i}@mts.rs") for i in range(30)]
    with pytest.warns(UserWarning) as caught:
        clusters, stats = merge_profiles(profiles(rows), MergeOptions(max_cluster_size=5))
    messages = [str(w.message) for w in caught if w.category is UserWarning]
    assert any("1 cluster(s) larger than max_cluster_size = 5: {'pos:P0': 6}" in m for m in messages)
    assert stats["oversized_clusters"] == {"pos:P0": 6}
    # no birth dates, no shared phone or e-mail: EM trains the card on the one block with pairs (the six Anas);
    # the names, used up by that block, stay untrained and are named; the merge still completes
    assert stats["em_blocks_skipped"] == ["phone", "e-mail"]
    assert stats["untrained_comparisons"] == ["first_name", "last_name"] and stats["em_trained"] == ["names"]
    assert any("could not train first_name, last_name" in m for m in messages)
    assert clusters.cluster.nunique() == 31


def order_lines(rows) -> pd.DataFrame:
    "Order lines with the contract's required columns from (source_system, source_customer_id, day, amount) rows."
    return pd.DataFrame([{"order_id": f"{sid}-{day}", "line_no": 1, "source_system": system, "source_customer_id": sid,
                          "ts": pd.Timestamp(day), "channel": "store", "product_id": "P1", "category": "shoes",
                          "quantity": 1, "unit_price": amount} for system, sid, day, amount in rows])


def test_without_profiles_each_order_customer_id_is_its_own_customer_with_a_stable_id(tmp_path):
    from loyalty_lab import customer_360, explain, load_settings, resolve_customers
    from loyalty_lab.warehouse import Warehouse
    s = load_settings(flags={"warehouse.path": str(tmp_path / "shop.duckdb"), "run.as_of": "2024-06-30"}, env={})
    with Warehouse.open(s) as wh:
        pass
    with pytest.raises(LoyaltyLabError, match="shop.duckdb has neither profiles nor order lines to make customers from"):
        resolve_customers(settings=s)
    with Warehouse.open(s) as wh:
        wh.ingest("order_lines", order_lines([("web", "W9", "2024-01-05", 10.0), ("pos", "77", "2024-02-01", 5.0),
                                              ("pos", "12", "2024-03-01", 7.5), ("pos", "77", "2024-03-02", 2.5)]),
                  source_name="first export")
    stages = []
    first = resolve_customers(settings=s, progress=stages.append)
    assert stages == ["merge: standardising profiles", "merge: no profiles: one customer per customer id of the order lines",
                      "merge: writing customers to the warehouse"]
    assert first.mode == "orders only" and (first.stats["records"], first.stats["customers"], first.stats["new_records"]) == (3, 3, 3)
    assert "each of the 3 customer ids of the order lines is its own customer" in first.summary()
    with Warehouse.open(s) as wh:  # next month's export: one new customer, one known
        wh.ingest("order_lines", order_lines([("pos", "05", "2024-04-01", 1.0), ("pos", "12", "2024-04-02", 4.0)]),
                  source_name="second export")
    second = resolve_customers(settings=s)
    assert (second.stats["new_records"], second.stats["removed_records"], second.stats["new_customers"]) == (1, 0, 1)
    with Warehouse.open(s, read_only=True) as wh:
        ids = wh.con.table("crosswalk").to_pandas().set_index("record_id").customer_id.to_dict()
    # the first run numbered its records in order; the new record takes the next number, the others keep theirs
    assert ids == {"pos:12": "C00000001", "pos:77": "C00000002", "web:W9": "C00000003", "pos:05": "C00000004"}
    view = customer_360(settings=s, include_pii=True).set_index("customer_id")
    assert view.net_revenue.to_dict() == {"C00000001": 11.5, "C00000002": 7.5, "C00000003": 10.0, "C00000004": 1.0}
    assert view.orders.to_dict() == {"C00000001": 2, "C00000002": 2, "C00000003": 1, "C00000004": 1}
    assert view.first_name.isna().all() and (view.points_balance == 0).all()
    with pytest.raises(LoyaltyLabError, match=r"C00000002 has no source profile, only order lines \(of pos:77\): nothing was merged"):
        explain("C00000002", settings=s)


def test_columns_missing_everywhere_do_not_break_standardising():
    "Issue 19: a memtable with an all-null e-mail, phone, card, first-name or city column raised AttributeError."
    import ibis
    from loyalty_lab.profiles import standardise
    frame = pd.DataFrame({c.name: [None, None] for c in CONTRACT["profiles"].columns})
    frame["source_system"], frame["source_customer_id"] = ["crm", "crm"], ["1", "2"]
    frame["last_name"] = ["Ilić", "Ilić"]
    keys = standardise(ibis.memtable(frame)).to_pandas()
    assert keys.record_id.tolist() == ["crm:1", "crm:2"] and keys.email_key.isna().all() and keys.last_key.notna().all()


def test_a_failing_em_block_leaves_the_model_unchanged(monkeypatch):
    """Issue 21: Splink's EM edits the live model before it raises (drops the block's comparisons, rescales λ).
    EM runs on a copy per block: the model trained with a block that fails equals the one trained without it."""
    from splink.internals.em_training_session import EMTrainingSession
    from splink.internals.exceptions import EMTrainingException
    from loyalty_lab import generate
    from loyalty_lab.matching import _splink_db, em_blocks, plan_model, splink_frame, train_model
    prog = generate(customers=300, seed=11)
    raw = prog.table("profiles").replace("", None)
    raw["birth_date"] = pd.to_datetime(raw.birth_date)
    frame = splink_frame(standardise(ibis.memtable(raw)).order_by("record_id").to_pandas())
    original = EMTrainingSession._train

    def fail_on_phone(self, *args, **kwargs):
        if "phone_e164" in self._blocking_rule_for_training.blocking_rule_sql:
            raise EMTrainingException("simulated: no pairs")  # after __init__ has edited the model it was given
        return original(self, *args, **kwargs)

    with _splink_db() as db:
        table = db.register(frame)
        settings, plan = plan_model(table, frame, 0.95)
        blocks = em_blocks(plan.keys)
        assert "phone" in [name for name, _ in blocks]
        without, _ = train_model(table, settings, [b for b in blocks if b[0] != "phone"], 42, len(frame))
        monkeypatch.setattr(EMTrainingSession, "_train", fail_on_phone)
        model, report = train_model(table, settings, blocks, 42, len(frame))
    assert [f["block"] for f in report["em_failed"]] == ["phone"]
    names = lambda m: [c["output_column_name"] for c in m["comparisons"]]
    assert names(model) == names(settings) == names(without)  # no comparison dropped by the failed step
    assert model["probability_two_random_records_match"] == settings["probability_two_random_records_match"] == plan.prior
    params = lambda m: [(c["output_column_name"], lvl.get("label_for_charts"), lvl.get("m_probability") or 0.0, lvl.get("u_probability") or 0.0)
                        for c in m["comparisons"] for lvl in c["comparison_levels"]]
    for got, want in zip(params(model), params(without), strict=True):  # the failed step left no trace
        assert got[:2] == want[:2] and got[2:] == pytest.approx(want[2:], rel=1e-6), (got, want)
    assert model["blocking_rules_to_generate_predictions"] == without["blocking_rules_to_generate_predictions"]
    assert "phone" in report["trained_comparisons"]  # the other blocks still train it


def test_a_model_with_nothing_trained_is_refused(monkeypatch):
    "Issue 21: pairs to score but no comparison trainable: a clear error, not links at random."
    from loyalty_lab import generate
    from loyalty_lab.matching import probabilistic_links
    import loyalty_lab.matching as matching
    prog = generate(customers=200, seed=12)
    raw = prog.table("profiles").replace("", None)
    raw["birth_date"] = pd.to_datetime(raw.birth_date)
    std = standardise(ibis.memtable(raw)).order_by("record_id").to_pandas()
    monkeypatch.setattr(matching, "em_blocks", lambda profile: [])
    with pytest.raises(LoyaltyLabError, match="match model could not be trained.*first_name"):
        probabilistic_links(std)


def test_address_only_profiles_merge_well():
    "Issue 21: without shared phone, e-mail or card (blanked), names + birth date + address + place carry the merge."
    from loyalty_lab import generate
    from loyalty_lab.profiles import MergeOptions, merge_profiles
    prog = generate(customers=3000, seed=77)
    raw = prog.table("profiles").replace("", None)
    raw[["phone", "email", "loyalty_card_number"]] = None
    raw["birth_date"] = pd.to_datetime(raw.birth_date)
    clusters, stats = merge_profiles(ibis.memtable(raw), MergeOptions())
    truth = prog.truth["profiles"].assign(record_id=lambda t: t.source_system + ":" + t.source_customer_id)
    scored = clusters.merge(truth[["record_id", "person_id"]], on="record_id", validate="one_to_one")
    s = pairwise_scores(scored.cluster, scored.person_id)
    assert s["precision"] >= 0.99 and s["f1"] >= 0.975, s
    assert stats["untrained_comparisons"] == [] and "address" in stats["comparisons"]
    assert stats["prior"] == pytest.approx(s["true_pairs"] / (len(raw) * (len(raw) - 1) / 2), rel=0.5)


@pytest.mark.parametrize("locale, country", [("en_AU", "AU"), ("de_DE", "DE"), ("pl_PL", "PL")])
def test_address_only_programmes_of_three_countries(locale, country):
    "Issue 21: F1 ≥ 0.98 and precision ≥ 0.99 on address-only profiles (synth's profile_mix) at default settings."
    from loyalty_lab.synth import SynthConfig, generate
    from loyalty_lab.profiles import MergeOptions, merge_profiles
    prog = generate(SynthConfig(customers=3000, seed=42, profile_mix="address_only", locale=locale))
    raw = prog.table("profiles").replace("", None)
    raw["birth_date"] = pd.to_datetime(raw.birth_date, errors="coerce")
    clusters, stats = merge_profiles(raw, MergeOptions(default_country=country))
    truth = prog.truth["profiles"].assign(record_id=lambda t: t.source_system + ":" + t.source_customer_id)
    scored = clusters.merge(truth[["record_id", "person_id"]], on="record_id", validate="one_to_one")
    s = pairwise_scores(scored.cluster, scored.person_id)
    assert s["precision"] >= 0.99 and s["f1"] >= 0.98, s


def test_explain_model_prints_the_stored_model(tmp_path, capsys):
    "Issue 21, point 4: `loyalty-lab merge --explain-model` — comparisons, blocking rules with pair counts, λ, m/u."
    import warnings
    from loyalty_lab import generate, load_settings
    from loyalty_lab.cli import main
    from loyalty_lab.profiles import stored_match_model
    from loyalty_lab.warehouse import Warehouse
    s = load_settings(flags={"warehouse.path": str(tmp_path / "shop.duckdb"), "run.as_of": "2024-06-30"}, env={})
    prog = generate(customers=300, seed=8)
    with Warehouse.open(s) as wh:
        assert stored_match_model(wh) is None
        wh.ingest("profiles", prog.table("profiles"), source_name="generated")
    ini = tmp_path / "settings.ini"
    ini.write_text(f"[warehouse]\npath = {tmp_path / 'shop.duckdb'}\n[run]\nas_of = 2024-06-30\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["merge", "--settings", str(ini), "--explain-model"]) == 0
    out = capsys.readouterr().out
    assert "match model: λ = " in out and "blocking rules (automatic; pairs compared" in out and "names: " in out
    assert "first_name" in out and "Exact match on first_key: m 0." in out and "training: EM on names" in out
    with Warehouse.open(s, read_only=True) as wh:
        m = stored_match_model(wh)
    assert m.prior == pytest.approx(m.model["probability_two_random_records_match"]) and len(m.blocking) >= 5


def _with_national_ids(customers=400, seed=3):
    """A generated programme with phone, e-mail and card blanked, whose crm and pos profiles carry the person's
    national id written two ways (pos: spaces, dashes, lower case): (profiles, truth record_id → person_id)."""
    from loyalty_lab import generate
    prog = generate(customers=customers, seed=seed)
    raw = prog.table("profiles").replace("", None)
    raw[["phone", "email", "loyalty_card_number"]] = None
    raw["birth_date"] = pd.to_datetime(raw.birth_date)
    truth = prog.truth["profiles"].assign(record_id=lambda t: t.source_system + ":" + t.source_customer_id)
    person = (raw.source_system + ":" + raw.source_customer_id).map(truth.set_index("record_id").person_id)
    number = person.astype("category").cat.codes.map(lambda i: f"{1000000 + i}ab{i % 97:02d}")
    raw["national_id"] = np.where(raw.source_system == "crm", number.str.upper(),
                                  np.where(raw.source_system == "pos", " " + number.str[:4] + "-" + number.str[4:] + " ", None))
    return raw, truth[["record_id", "person_id"]]


def test_a_shared_national_id_merges_sources_that_share_no_phone_or_email():
    """Issue 21, point 2: [profiles] identifiers = national_id — a hard identifier of the deterministic pass (with its
    guards), and an exact comparison and a blocking rule of the match model."""
    from loyalty_lab.profiles import MergeOptions, merge_profiles
    raw, truth = _with_national_ids()
    # one person's crm and pos profiles: another last name, another address, no birth date — only the id is shared
    crm = raw[raw.source_system == "crm"].set_index("national_id")
    pos = raw[raw.source_system == "pos"].assign(key=lambda f: f.national_id.str.replace(r"[^0-9A-Za-z]", "", regex=True).str.upper())
    shared = pos[pos.key.isin(crm.index)].iloc[0]
    raw.loc[raw.source_customer_id == shared.source_customer_id, ["last_name", "address", "postcode", "city", "birth_date"]] = [
        "Zzyzx", "Nepoznata 999", None, "Nigde", pd.NaT]
    a, b = f"pos:{shared.source_customer_id}", f"crm:{crm.loc[shared.key].source_customer_id}"
    scores = {}
    for ids in ((), ("national_id",)):
        clusters, stats = merge_profiles(raw, MergeOptions(identifiers=ids))
        scored = clusters.merge(truth, on="record_id", validate="one_to_one")
        scores[ids] = pairwise_scores(scored.cluster, scored.person_id)
        together = clusters.set_index("record_id").cluster
        assert (together[a] == together[b]) == bool(ids)  # without the id they stay apart
    assert "national_id" in stats["comparisons"] and any(r["name"] == "id_national_id" for r in stats["blocking_rules"])
    assert "national_id" not in stats["untrained_comparisons"]
    assert scores[("national_id",)]["precision"] >= 0.99
    assert scores[("national_id",)]["recall"] > scores[()]["recall"] + 0.005, scores


def test_extra_id_keys_are_trimmed_case_folded_and_without_punctuation():
    t = profiles([dict(person("crm", "C1", "Ana", "Ilić"), national_id=" 0101990-710 012 "),
                  dict(person("pos", "P1", "Ana", "Ilić"), customer_no="ab.12/34"),
                  dict(person("web", "W1", "Ana", "Ilić"), national_id="  ")])
    std = standardise(t, identifiers=("national_id", "customer_no")).to_pandas()
    assert std.id_national_id.tolist()[0] == "0101990710012" and pd.isna(std.id_national_id.tolist()[2])
    assert std.id_customer_no.tolist()[1] == "AB1234"
    with pytest.raises(LoyaltyLabError, match=r"\[profiles\] identifiers = jmbg: 'jmbg' is not an identifier column "
                       r"of the profiles contract; use national_id, customer_no.*national_id = JMBG"):
        standardise(t, identifiers=("jmbg",))


def test_a_junk_national_id_shared_by_many_is_set_aside():
    "A value shared by more than max_records records or max_first_names first names links nobody, like a shop's phone."
    from loyalty_lab.profiles import MergeOptions, merge_profiles
    raw, truth = _with_national_ids()
    crm = raw.index[raw.source_system == "crm"][:40]
    raw.loc[crm, "national_id"] = "000-000"
    with pytest.warns(UserWarning, match="shared by more than"):
        clusters, stats = merge_profiles(raw, MergeOptions(identifiers=("national_id",)))
    assert stats["blocked_values"] == 1
    scored = clusters.merge(truth, on="record_id", validate="one_to_one")
    junk = scored[scored.record_id.isin("crm:" + raw.loc[crm, "source_customer_id"])]
    assert junk.cluster.nunique() >= 35  # 40 people: not one customer
    assert pairwise_scores(scored.cluster, scored.person_id)["precision"] >= 0.99
    from loyalty_lab.profiles import deterministic_edges, set_aside, standardise as std_
    std = std_(ibis.memtable(raw), identifiers=("national_id",)).to_pandas()
    edges, blocked = deterministic_edges(ibis.memtable(std))
    assert blocked[["identifier", "value", "records"]].values.tolist() == [["id_national_id", "000000", 40]]
    junk_ids = set("crm:" + raw.loc[crm, "source_customer_id"])
    assert set_aside(std, blocked).id_national_id.eq("000000").sum() == 0  # no evidence for Splink either
    assert (edges.identifier == "id_national_id").sum() > 50 and not (edges.a.isin(junk_ids) | edges.b.isin(junk_ids)).any()


def test_a_source_mapping_fills_the_national_id_that_settings_name(tmp_path):
    "`national_id = JMBG` under [source.x] and `[profiles] identifiers = national_id`: no code, one customer."
    import warnings
    from loyalty_lab import ingest_sources, load_settings
    from loyalty_lab.profiles import resolve_customers, stored_match_model
    from loyalty_lab.warehouse import Warehouse
    raw, truth = _with_national_ids(300, seed=4)
    raw.rename(columns={"national_id": "JMBG"}).to_parquet(tmp_path / "profiles.parquet")
    (tmp_path / "settings.ini").write_text(
        "[warehouse]\npath = wh.duckdb\n[run]\nas_of = 2024-06-30\n[profiles]\nidentifiers = national_id\n"
        "[source.people]\ntable = profiles\npath = profiles.parquet\nnational_id = JMBG\n", encoding="utf-8")
    s = load_settings(tmp_path / "settings.ini", env={})
    assert s.profiles.identifiers == ("national_id",)
    ingest_sources(s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = resolve_customers(settings=s)
    assert run.stats["records_by_link"].get("id_national_id", 0) > 50
    with Warehouse.open(s, read_only=True) as wh:
        crosswalk = wh.con.table("crosswalk").to_pandas()
        model = stored_match_model(wh)
    scored = crosswalk.merge(truth, on="record_id", validate="one_to_one")
    assert pairwise_scores(scored.customer_id, scored.person_id)["precision"] >= 0.99
    assert "national_id" in model.describe() and "id_national_id" in set(model.blocking.name)


def _merged_model(tmp_path, profiles_text: str):
    import warnings
    from loyalty_lab import generate, load_settings
    from loyalty_lab.profiles import resolve_customers, stored_match_model
    from loyalty_lab.warehouse import Warehouse
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "settings.ini").write_text(f"[warehouse]\npath = wh.duckdb\n[run]\nas_of = 2024-06-30\n[profiles]\n{profiles_text}\n",
                                           encoding="utf-8")
    s = load_settings(tmp_path / "settings.ini", env={})
    with Warehouse.open(s) as wh:
        wh.ingest("profiles", generate(customers=300, seed=8).table("profiles"), source_name="generated")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            resolve_customers(wh, settings=s)
    with Warehouse.open(s, read_only=True) as wh:
        return stored_match_model(wh)


def test_blocking_and_comparisons_from_settings_replace_the_automatic_choice(tmp_path):
    "Issue 21, point 4: [profiles] blocking / comparisons — the stored model uses them, and says so."
    auto = _merged_model(tmp_path / "auto", "")
    mine = _merged_model(tmp_path / "mine", "blocking = first_name+last_name; street_key+city; phone_e164\n"
                                            "comparisons = first_name:name, last_name:name, birth_date:date, "
                                            "city:place, phone:exact")
    assert len(auto.blocking) >= 5 and "house + street" in set(auto.blocking.name)
    assert mine.blocking.name.tolist() == ["first_key + last_key (from settings)", "street_key + city_key (from settings)",
                                           "phone_e164 (from settings)"]
    assert [c["output_column_name"] for c in mine.model["comparisons"]] == [
        "first_name", "last_name", "birth_date", "place", "phone"]
    assert "address" in [c["output_column_name"] for c in auto.model["comparisons"]]
    text = mine.describe()
    assert "blocking rules (from settings;" in text and "comparisons (from settings;" in text
    assert "blocking rules (automatic;" in auto.describe()


def test_a_nickname_is_a_level_of_the_first_name_comparison():
    "Aca is Aleksandar, Kasia Katarzyna, Саша Александр, Bill William: `first_given_key` and its own level (matching.NICKNAMES)."
    from loyalty_lab.matching import auto_comparisons, key_profile
    t = profiles([person("crm", "C1", "Aca", "Ilić"), person("pos", "P1", "Aleksandar", "Ilić"),
                  person("web", "W1", "КАСИЯ", "Nowak"), person("app", "A1", "Kasia", "Nowak"),
                  person("crm", "C2", "Bill", "Smith"), person("crm", "C3", "Sneža", "Perić"),
                  person("crm", "C4", "Ana", "Perić")])
    std = standardise(t).to_pandas()
    assert std.first_given_key.tolist()[:2] == ["aleksandar", "aleksandar"]
    assert std.first_given_key.tolist()[3:] == ["katarzyna", "william", "snezana", "ana"]
    comparisons, _ = auto_comparisons(key_profile(std))
    first = comparisons[0].create_comparison_dict("duckdb")
    labels = [lvl.get("label_for_charts") for lvl in first["comparison_levels"]]
    assert "first_key: a nickname of the same name" in labels
    assert labels.index("first_key: a nickname of the same name") == labels.index("Jaro-Winkler distance of first_key >= 0.92") - 1
