"""Merge quality (issue 21.5): graph figures of each customer's links, and `merge --evaluate` against labelled pairs."""
import json

import numpy as np
import pandas as pd
import pytest

from lab_helpers import SAMPLE, cli, merged_lab
from loyalty_lab.merge_quality import cluster_quality, evaluate_labels, graph_summary


def _links(rows):
    return pd.DataFrame(rows, columns=["a", "b", "kind", "match_probability"])


def _clusters(groups):
    return pd.DataFrame([(r, g[0]) for g in groups for r in g], columns=["record_id", "cluster"])


def test_hand_built_graph():
    links = _links([("x1", "x2", "card_key", np.nan), ("x3", "x2", "probabilistic", 0.999),   # chain x1 - x2 - x3
                    ("t1", "t2", "probabilistic", 0.99), ("t2", "t3", "probabilistic", 0.99), ("t3", "t1", "phone_e164", np.nan),
                    ("t1", "t2", "email_key", np.nan),  # a second link of the same pair counts once
                    ("p1", "p2", "probabilistic", 0.96),  # one link of 0.96 holds this pair
                    ("q1", "q2", "card_key", np.nan), ("q2", "q3", "card_key", np.nan), ("q3", "q4", "probabilistic", 0.96),
                    ("q1", "z9", "probabilistic", 0.97)])  # refused by a guard: between two customers, not counted
    clusters = _clusters([("x1", "x2", "x3"), ("t1", "t2", "t3"), ("p1", "p2"), ("q1", "q2", "q3", "q4"), ("z9",)])
    q = cluster_quality(links, clusters, threshold=0.95).set_index("cluster")
    assert set(q.index) == {"x1", "t1", "p1", "q1"}  # no singleton
    assert q.loc["x1", "bridges"] == 2 and q.loc["x1", "links"] == 2 and q.loc["x1", "density"] == pytest.approx(2 / 3)
    assert q.loc["t1", "bridges"] == 0 and q.loc["t1", "density"] == 1.0
    assert q.loc["q1", "bridges"] == 3 and q.loc["q1", "density"] == pytest.approx(3 / 6)
    # at 0.99 (or the default 0.975 for threshold 0.95) the 0.96 links go: p and q split, x and t hold
    for higher in (None, 0.99):
        split = cluster_quality(links, clusters, 0.95, higher).set_index("cluster").would_split
        assert split.to_dict() == {"p1": True, "q1": True, "x1": False, "t1": False}
    assert not cluster_quality(links, clusters, 0.95, higher=0.96).would_split.any()
    g = graph_summary(cluster_quality(links, clusters, 0.95), 0.95)
    assert g["sizes"] == {2: 1, 3: 2, 4: 1} and g["clusters_with_bridge"] == 3 and g["larger_clusters_with_bridge"] == 2
    assert g["bridge_links"] == 6 and g["would_split"] == 2 and g["mean_density"] == pytest.approx((2 / 3 + 1 + 1 + 0.5) / 4, abs=1e-4)
    assert g["review"][:2] == ["q1", "p1"]  # weakest bridge first (0.96), the larger one before the pair


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality")
    settings = merged_lab(root)
    from loyalty_lab.warehouse import Warehouse
    with Warehouse.open(settings, read_only=True) as wh:
        stats = json.loads(wh.con.table("merge_runs").to_pandas().stats.iloc[-1])
        crosswalk = wh.con.table("crosswalk").to_pandas()
        links = wh.con.table("profile_links").to_pandas()
    return root, stats, crosswalk, links


def test_graph_figures_of_the_sample_merge(lab):
    root, stats, crosswalk, links = lab
    g = stats["graph"]
    sizes = crosswalk.customer_id.value_counts()
    assert g["sizes"] == {str(k): int(v) for k, v in sizes[sizes > 1].value_counts().sort_index().items()}  # JSON keys
    assert g["multi_record_clusters"] == int((sizes > 1).sum()) > 1000
    assert g["single_link_clusters"] == g["sizes"]["2"]  # every pair of the sample is held by exactly one distinct link
    assert g["clusters_with_bridge"] == g["sizes"]["2"] + g["larger_clusters_with_bridge"]
    assert 0.99 < g["mean_density"] <= 1 and g["split_threshold"] == 0.975
    assert g["would_split"] <= g["clusters_with_bridge"]
    assert set(g["review"]) <= set(crosswalk.record_id) and len(g["review"]) == 10


def _hand_labels(crosswalk, links):
    "23 + 1 + 10 labelled pairs of the sample whose right answers follow from the truth folder (see the counts below)."
    truth = pd.read_csv(SAMPLE / "truth" / "profiles.csv", dtype=str)
    person = (truth.source_system + ":" + truth.source_customer_id).to_frame("record_id").assign(person=truth.person_id)
    cw = crosswalk.merge(person, on="record_id")
    pairs = cw.groupby("customer_id").filter(lambda g: len(g) == 2 and g.person.nunique() == 1).sort_values("record_id")
    two = [tuple(g.record_id) for _, g in pairs.groupby("customer_id", sort=True)][:22]
    rows = [(a, b, "same") for a, b in two[:20]]                  # right: same customer, direct link
    rows += [(a, b, "different") for a, b in two[20:22]]          # wrong labels: the merge says same (2 false positives)
    singles = cw.groupby("customer_id").filter(lambda g: len(g) == 1).sort_values("record_id")
    a, b = singles.iloc[0], singles.iloc[1]
    assert a.person != b.person
    rows.append((a.record_id, b.record_id, "same"))                # wrong label: two customers (1 false negative)
    firsts = singles.record_id.iloc[2:12].tolist()
    rows += [(x, y, "different") for x, y in zip(firsts[::2], firsts[1::2])]  # right: 5 pairs of different customers
    # a pair in one customer with no direct link: same for the clusters, missed by the pairs
    linked = set(zip(links.a, links.b)) | set(zip(links.b, links.a))
    big = cw.groupby("customer_id").filter(lambda g: len(g) >= 3 and g.person.nunique() == 1)
    indirect = next((x, y) for _, g in big.groupby("customer_id") for x in g.record_id for y in g.record_id
                    if x < y and (x, y) not in linked)
    rows.append((*indirect, "same"))
    return pd.DataFrame(rows, columns=["record_a", "record_b", "label"])


def test_evaluate_on_the_sample_with_hand_counted_answers(lab):
    root, stats, crosswalk, links = lab
    labels = _hand_labels(crosswalk, links)
    assert len(labels) == 29
    # clusters: 21 right same (20 + the indirect pair), 2 wrongly same, 1 missed; pairs: 20, 2, 2
    r = evaluate_labels(labels, crosswalk, links)
    c, p = r["clusters"], r["pairs"]
    assert (c["true_positives"], c["false_positives"], c["false_negatives"], c["true_negatives"]) == (21, 2, 1, 5)
    assert c["precision"] == pytest.approx(21 / 23) and c["recall"] == pytest.approx(21 / 22) and c["f1"] == pytest.approx(42 / 45)
    assert (p["true_positives"], p["false_positives"], p["false_negatives"]) == (20, 2, 2)
    assert p["precision"] == pytest.approx(20 / 22) and p["recall"] == pytest.approx(20 / 22)
    assert len(r["mistakes"]) == 4

    labels.to_csv(root / "labels.csv", index=False)
    runs_before = stats_count(root)
    done = cli("merge", "--evaluate", "labels.csv", cwd=root)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "29 labelled pairs" in out
    assert "clusters precision 0.9130  recall 0.9545  F1 0.9333" in out
    assert "pairs    precision 0.9091  recall 0.9091  F1 0.9091" in out
    assert "mistakes (4):" in out and labels.record_a.iloc[20] in out and labels.record_a.iloc[22] in out
    assert stats_count(root) == runs_before  # evaluating merged nothing


def stats_count(root):
    import duckdb
    with duckdb.connect(str(root / "data" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("SELECT count(*) FROM merge_runs").fetchone()[0]


@pytest.mark.parametrize("text, expected", [
    ("a,b,label\npos:1,pos:2,same\n", ["labels bad.csv", "missing column(s) record_a, record_b", "it has a, b, label"]),
    ("record_a,record_b,label\n{a},{b},maybe\n{a},{b},no\n", ["labels bad.csv", "column label must be same or different",
                                                             "lines [2, 3]", "['maybe', 'no']", "fix or remove"]),
    ("record_a,record_b,label\n{a},pos:nobody,same\n", ["labels bad.csv", "record_a/record_b", "['pos:nobody']",
                                                      "source_system:source_customer_id", "fix or remove"]),
])
def test_evaluate_bad_labels(lab, text, expected):
    root, _, crosswalk, _ = lab
    a, b = crosswalk.record_id.iloc[0], crosswalk.record_id.iloc[1]
    (root / "bad.csv").write_text(text.format(a=a, b=b))
    done = cli("merge", "--evaluate", "bad.csv", cwd=root)
    assert done.returncode == 2 and done.stdout == ""
    for part in expected:
        assert part in done.stderr, done.stderr


def test_evaluate_before_any_merge(tmp_path):
    from lab_helpers import make_lab
    make_lab(tmp_path)
    (tmp_path / "l.csv").write_text("record_a,record_b,label\n")
    done = cli("merge", "--evaluate", "l.csv", cwd=tmp_path)
    assert done.returncode == 2 and "does not exist yet" in done.stderr and "loyalty-lab ingest" in done.stderr


def test_the_report_merge_section_shows_the_graph_figures(lab, monkeypatch):
    from loyalty_lab.sections import ReportContext, quality_section
    root, stats, crosswalk, _ = lab
    monkeypatch.chdir(root)
    with ReportContext.open(root / "settings.ini", output_dir=root / "out") as ctx:
        s = quality_section(ctx)
    shown = "\n".join(str(p) if kind in ("text", "note", "html") else p.to_html() if kind == "table" else ""
                      for kind, p in s.parts)
    g = stats["graph"]
    assert f"{g['larger_clusters_with_bridge']:,} customers of three or more profiles hang together by a single link" in shown
    assert "would split at match probability 0.975" in shown and f"{g['multi_record_clusters']:,} (" in shown
    first = crosswalk.set_index("record_id").customer_id.reindex(g["review"]).dropna()
    assert "loyalty-lab explain C" in shown and any(f"loyalty-lab explain {c}" in shown for c in first)
