"""How well the profile merge finds people in a generated programme of a given profile mix and locale.

    .venv/bin/python tests/bench/score_merge_mix.py --profile-mix address_only --locale en_AU --customers 3000 --seed 42

Generates the programme into a temporary folder (Parquet, as `loyalty-lab synth` writes it), reads its
profiles back, merges them with `loyalty_lab.profiles.merge_profiles` (built-in options, the locale's
country as the default country of phone numbers) and prints the pairwise precision, recall and F1 against
the truth (`pairwise_scores`, as tests/test_profiles.py scores merges) with the seconds each step took.
Not part of `make bench`: a yardstick for work on the merge (`--profile-mix default` is the easy case)."""
import argparse
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
from loyalty_lab import LoyaltyLabError
from loyalty_lab.profiles import MergeOptions, merge_profiles, pairwise_scores
from loyalty_lab.synth import LOCALES, PROFILE_MIXES, SynthConfig, generate, write_programme

COUNTRY = {"default": "RS", "en_AU": "AU", "en_US": "US", "de_DE": "DE", "pl_PL": "PL", "sr_RS": "RS"}


def score(profile_mix: str, locale: str, customers: int, seed: int, threshold: float) -> dict:
    t0 = time.perf_counter()
    prog = generate(SynthConfig(customers=customers, seed=seed, profile_mix=profile_mix, locale=locale))
    with tempfile.TemporaryDirectory() as tmp:
        write_programme(prog, tmp, ("parquet",))
        profiles = pd.read_parquet(Path(tmp, "profiles.parquet")).replace("", None)
        truth = pd.read_parquet(Path(tmp, "truth", "profiles.parquet"))
    profiles["birth_date"] = pd.to_datetime(profiles.birth_date, errors="coerce")
    t1 = time.perf_counter()
    country, note = COUNTRY[locale], ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            clusters, stats = merge_profiles(profiles, MergeOptions(default_country=country, threshold=threshold, seed=seed))
        except LoyaltyLabError as e:
            if "no calling code known" not in str(e):
                raise
            note = f"the merge knows no calling code of {country}: phones read as RS numbers"
            clusters, stats = merge_profiles(profiles, MergeOptions(threshold=threshold, seed=seed))
    t2 = time.perf_counter()
    truth["record_id"] = truth.source_system + ":" + truth.source_customer_id
    scored = clusters.merge(truth[["record_id", "person_id"]], on="record_id", validate="one_to_one")
    s = pairwise_scores(scored.cluster, scored.person_id)
    return dict(s, generate_s=t1 - t0, merge_s=t2 - t1, records=len(profiles), people=truth.person_id.nunique(),
                customers=stats["customers"], linked_by=clusters.linked_by.value_counts().to_dict(),
                warnings=[str(w.message) for w in caught if w.category is UserWarning], note=note)  # the lab's own


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile-mix", default="default", choices=PROFILE_MIXES)
    ap.add_argument("--locale", default="default", choices=("default",) + LOCALES)
    ap.add_argument("--customers", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threshold", type=float, default=MergeOptions.threshold, help="match probability threshold")
    a = ap.parse_args()
    r = score(a.profile_mix, a.locale, a.customers, a.seed, a.threshold)
    print(f"merge of profile mix {a.profile_mix}, locale {a.locale}: {a.customers:,} people (seed {a.seed}) → "
          f"{r['records']:,} profiles → {r['customers']:,} customers (true people {r['people']:,})")
    print(f"  pairwise  precision {r['precision']:.4f}  recall {r['recall']:.4f}  F1 {r['f1']:.4f}  "
          f"({r['true_pairs']:,.0f} true pairs, {r['predicted_pairs']:,.0f} predicted)")
    print(f"  links     {', '.join(f'{k} {v:,}' for k, v in r['linked_by'].items()) or 'none'}")
    print(f"  seconds   generate {r['generate_s']:.1f}, merge {r['merge_s']:.1f}" + (f"; {r['note']}" if r["note"] else ""))
    for message in r["warnings"]:
        print(f"  warning   {message[:300]}")


if __name__ == "__main__":
    main()
