"""Stable customer ids kept in the warehouse: incremental runs, the id audit, guards, analyst decisions, bad input."""
import warnings
from pathlib import Path

import ibis
import pandas as pd
import pytest
from loyalty_lab import LoyaltyLabError
from loyalty_lab.config import load_settings
from loyalty_lab.contract import CONTRACT
from loyalty_lab.profiles import MergeOptions, merge_profiles, pairwise_scores, parse_survivorship, resolve_customers
from loyalty_lab.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"


@pytest.fixture(scope="module")
def sample():
    raw = pd.read_csv(SAMPLE / "profiles.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(SAMPLE / "truth" / "profiles.csv", dtype=str)
    truth["record_id"] = truth.source_system + ":" + truth.source_customer_id
    return raw, truth


def frame(rows: list[dict]) -> pd.DataFrame:
    cols = CONTRACT["profiles"].column_names
    return pd.DataFrame([{c: r.get(c, "") for c in cols} for r in rows]).fillna("")


def person(system, sid, first, last, email="", phone="", city="Beograd", birth=""):
    return dict(source_system=system, source_customer_id=sid, first_name=first, last_name=last, email=email,
                phone=phone, city=city, birth_date=birth, signup_date="2024-01-01")


def bystanders(n=40):
    "Unrelated people, so Splink has a population to estimate u from."
    firsts = ["Ana", "Marko", "Jelena", "Luka", "Ivana", "Nikola", "Milica", "Stefan", "Tijana", "Petar"]
    lasts = ["Petrović", "Nikolić", "Marković", "Stojanović", "Pavlović", "Kovačević", "Lukić", "Savić"]
    return [person("crm", f"B{i}", firsts[i % 10], lasts[i % 8] + ("" if i < 10 else str(i)),
                   email=f"bystander{i}@mts.rs", phone=f"06{i % 10}55{i:04d}") for i in range(n)]


def test_incremental_run_keeps_ids_scores_only_new_records_and_audits_merges(tmp_path, sample):
    raw, truth = sample
    with Warehouse(tmp_path / "w.duckdb") as wh:
        wh.ingest("profiles", raw[raw.source_system != "web"], source_name="first.csv")
        first = resolve_customers(wh, options=MergeOptions())
        before = wh.con.table("crosswalk").to_pandas()
        wh.ingest("profiles", raw[raw.source_system == "web"], source_name="second.csv")
        second = resolve_customers(wh, options=MergeOptions())
        after = wh.con.table("crosswalk").to_pandas()
        audit = wh.con.table("customer_id_audit").to_pandas()
        again = resolve_customers(wh, options=MergeOptions(), full=True)
        rerun = wh.con.table("crosswalk").to_pandas()
        unchanged = resolve_customers(wh, options=MergeOptions())
        runs = wh.con.table("merge_runs").to_pandas()
        golden = wh.con.table("golden_records")
        assert golden.schema()["birth_date"].is_date()  # a date, as in the profiles, not a timestamp
        assert golden.count().execute() == rerun.customer_id.nunique()
    assert (first.mode, second.mode, again.mode, unchanged.mode) == ("full", "incremental", "full", "incremental")
    assert (unchanged.stats["new_records"], unchanged.stats["changed_records"], len(unchanged.changes)) == (0, 0, 0)
    n_web = int((raw.source_system == "web").sum())
    assert (second.stats["new_records"], second.stats["changed_records"], second.stats["removed_records"]) == (n_web, 0, 0)
    # every earlier record keeps its id, unless its customer was merged into another (and the audit says so)
    kept = before.merge(after, on="record_id", suffixes=("_before", ""))
    moved = kept[kept.customer_id_before != kept.customer_id]
    merges = second.changes[second.changes.event == "merge"]
    retired = {i.strip() for ids in merges.related_ids for i in ids.split(",")}
    assert set(moved.customer_id_before) <= retired and set(moved.customer_id) <= set(merges.customer_id)
    assert len(moved) < 0.01 * len(kept)
    assert audit.event.tolist() == merges.event.tolist() and audit.reason.str.startswith("linked by").all()
    # incremental result is as good as a full merge, and the full re-run changes no id
    scored = after.merge(truth[["record_id", "person_id"]], on="record_id", validate="one_to_one")
    assert len(scored) == len(raw) and pairwise_scores(scored.customer_id, scored.person_id)["f1"] >= 0.98
    pd.testing.assert_frame_equal(rerun.sort_values("record_id", ignore_index=True),
                                  after.sort_values("record_id", ignore_index=True))
    assert again.changes.empty and runs.last_customer_number.is_monotonic_increasing


def test_a_changed_record_splits_its_customer_and_the_audit_says_why(tmp_path):
    ana = [person("pos", "P1", "Ana", "Ilić", phone="0641112223"),
           person("web", "W1", "Ana", "Ilić", phone="0641112223", email="ana.ilic@gmail.com"),
           person("app", "A1", "", "", email="ana.ilic@gmail.com")]
    with Warehouse(tmp_path / "w.duckdb") as wh, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wh.ingest("profiles", frame(bystanders()), source_name="crm.csv")
        wh.ingest("profiles", frame(ana), source_name="ana.csv")
        resolve_customers(wh, options=MergeOptions())
        x = wh.con.table("crosswalk").to_pandas().set_index("record_id").customer_id
        assert x["pos:P1"] == x["web:W1"] == x["app:A1"]
        # the web shop corrects W1: another person's phone and e-mail; nothing joins P1 and A1 any more
        ana[1] = person("web", "W1", "Ana", "Ilić", phone="0659998887", email="ana.ilic.novi@gmail.com")
        wh.ingest("profiles", frame(ana), source_name="ana.csv")
        run = resolve_customers(wh, options=MergeOptions())
        y = wh.con.table("crosswalk").to_pandas().set_index("record_id").customer_id
    assert run.stats["changed_records"] == 1 and run.stats["new_records"] == 0
    assert y["app:A1"] != y["pos:P1"]
    split = run.changes[run.changes.event == "split"]
    assert split.customer_id.tolist() == [x["pos:P1"]] and split.reason.iloc[0] == "records changed: web:W1"
    assert x["pos:P1"] in {y["pos:P1"], y["app:A1"]}  # one piece keeps the id, the other gets a new one


def test_never_and_always_decisions_override_the_links(tmp_path, sample):
    raw, truth = sample
    profiles = ibis.memtable(raw.replace("", None).assign(birth_date=lambda f: pd.to_datetime(f.birth_date)))
    clusters, _ = merge_profiles(profiles)
    by_cluster = clusters.groupby("cluster").record_id.agg(list)
    pair = by_cluster[by_cluster.map(len) == 2].iloc[0]
    singles = by_cluster[by_cluster.map(len) == 1].iloc[:2].str[0].tolist()
    decisions = tmp_path / "decisions.csv"
    pd.DataFrame({"record_a": [pair[0], singles[0]], "record_b": [pair[1], singles[1]],
                  "decision": ["never", "always"], "reason": ["checked by phone", "same person, says the shop"]}
                 ).to_csv(decisions, index=False)
    clusters2, stats = merge_profiles(profiles, MergeOptions(pair_decisions=decisions))
    c = clusters2.set_index("record_id").cluster
    assert c[pair[0]] != c[pair[1]] and c[singles[0]] == c[singles[1]]
    assert stats["always_pairs"] == 1 and stats["links_skipped_by_guards"] >= 1
    assert clusters2.set_index("record_id").linked_by[singles[1]] == "always"


@pytest.mark.parametrize("rows, message", [
    ([["pos:X", "web:Y", "never"]], r"unknown record id\(s\) \['pos:X', 'web:Y'\]"),
    ([["a", "b", "maybe"]], r"decision must be never or always; lines \[2\] say \['maybe'\]"),
])
def test_bad_decisions_are_refused(tmp_path, rows, message):
    path = tmp_path / "d.csv"
    pd.DataFrame(rows, columns=["record_a", "record_b", "decision"]).to_csv(path, index=False)
    t = ibis.memtable(frame([person("pos", "P1", "Ana", "Ilić"), person("web", "W1", "Ana", "Ilić")]))
    with pytest.raises(LoyaltyLabError, match=message):
        merge_profiles(t, MergeOptions(pair_decisions=path))


def test_contradicting_decisions_are_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("record_a,record_b,decision\npos:P1,web:W1,never\nweb:W1,pos:P1,always\n")
    t = ibis.memtable(frame([person("pos", "P1", "Ana", "Ilić"), person("web", "W1", "Ana", "Ilić")]))
    with pytest.raises(LoyaltyLabError, match=r"pairs marked both never and always: \[\('pos:P1', 'web:W1'\)\]"):
        merge_profiles(t, MergeOptions(pair_decisions=path))


def test_a_duplicate_free_source_never_merges_with_itself():
    # two POS cards of different people both share a phone with one web account: a chain
    rows = bystanders() + [person("pos", "P1", "Ana", "Ilić", phone="0641112223", email="ana@mts.rs"),
                           person("pos", "P2", "Ana", "Ilić", email="ana@mts.rs"),
                           person("web", "W1", "Ana", "Ilić", phone="0641112223")]
    t = ibis.memtable(frame(rows))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chained, _ = merge_profiles(t)
        guarded, stats = merge_profiles(t, MergeOptions(duplicate_free_sources=("pos",)))
    c, g = chained.set_index("record_id").cluster, guarded.set_index("record_id").cluster
    assert c["pos:P1"] == c["pos:P2"] == c["web:W1"]
    assert g["pos:P1"] != g["pos:P2"] and stats["links_skipped_by_guards"] >= 1
    assert g["web:W1"] in (g["pos:P1"], g["pos:P2"])


def test_other_scripts_and_all_empty_columns_are_handled():
    rows = [person("pos", f"P{i}", first, last, city="") for i, (first, last) in
            enumerate([("Γιώργος", "Παπαδόπουλος"), ("Γιώργος", "Παπαδόπουλος"), ("王", "芳"), ("Ana", "Ilić")] * 3)]
    t = ibis.memtable(frame(rows))  # no e-mail, phone, card, birth date or city anywhere
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clusters, stats = merge_profiles(t)
    assert stats["records"] == 12 and stats["names_in_other_scripts"] == 9
    # a name alone is no evidence (namesakes abound): every record stays its own customer, none dropped
    assert clusters.cluster.nunique() == 12 and stats["records_by_link"] == {"single": 12}
    from loyalty_lab.profiles import standardise
    keys = standardise(t).order_by("record_id").to_pandas()
    assert keys.first_key.iloc[0] == "γιωργος" and keys.other_script.sum() == 9


def test_profiles_settings_are_typed_and_checked(tmp_path):
    ini = tmp_path / "settings.ini"
    ini.write_text("[profiles]\nduplicate_free_sources = crm, pos\nmatch_threshold = 0.9\n"
                   "survivorship = email = most_frequent\n")
    s = load_settings(ini, env={})
    o = MergeOptions.from_settings(s)
    assert o.duplicate_free_sources == ("crm", "pos") and o.threshold == 0.9
    assert o.survivorship == {"email": "most_frequent"} and o.source_priority == ("crm", "pos", "app", "web")
    ini.write_text("[profiles]\nduplicate_free_sources = crm, fax\n")
    with pytest.raises(LoyaltyLabError, match="expected a comma-separated list of pos, web, app, crm"):
        load_settings(ini, env={})
    with pytest.raises(LoyaltyLabError, match="'email = newest' is not 'attribute = rule'"):
        parse_survivorship("email = newest")
