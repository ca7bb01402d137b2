"""CLV speed: BG/NBD + Gamma-Gamma fitted on 1,000,000 customers, against lifetimes fitted on the raw rows
(one per customer, no weights, cold start) in the same run, and predictions for everybody.

    .venv/bin/python tests/bench/bench_clv.py [customers]

Targets (issue 6): our fit ≤ 5 s and ≥ 5× faster than lifetimes on the raw rows; predictions ≤ 5 s; peak
memory printed. The customers are drawn from the BG/NBD and Gamma-Gamma processes themselves (r 1.5,
α 4, a 0.8, b 4 per week; p 6, q 4, γ 1,500), first purchases spread over 18 months, times in whole days
— so the estimates must come back near those values. Each measurement runs in a fresh process."""
import json
import subprocess
import sys

POPULATION = """
import numpy as np, pandas as pd
def population(n, seed=0, r=1.5, alpha=4.0, a=0.8, b=4.0, p=6.0, q=4.0, gamma=1500.0, days=547):
    rng = np.random.default_rng(seed)
    T = rng.integers(1, days + 1, n)                       # days since the first purchase
    lam = rng.gamma(r, 1 / alpha, n) / 7                   # purchases per day while active
    N = rng.poisson(lam * T)                               # purchases if nobody dropped out
    x = np.minimum(N, rng.geometric(rng.beta(a, b, n)))    # BG/NBD: dropout after a purchase
    k = np.maximum(x, 1)
    last = np.where(x > 0, np.floor(T * rng.beta(k, np.maximum(N - x, 0) + 1)), 0)  # x-th of N uniform times
    nu = rng.gamma(q, 1 / gamma, n)
    m = np.where(x > 0, rng.gamma(p * k, 1 / (nu * k)), 0.0)                       # mean of x Gamma(p, ν) spends
    s = pd.DataFrame({"frequency": x.astype(float), "recency": last / 7, "T": T / 7, "monetary_value": m},
                     index=pd.Index(np.char.add("C", np.arange(n).astype(str)), name="customer_id"))
    s.attrs.update(time_unit="W", as_of="2024-06-30")
    return s
"""

OURS = POPULATION + """
import json, resource, time
from loyalty_lab.clv import ClvModel
s = population({n})
t = time.perf_counter(); model = ClvModel().fit(s); fit = time.perf_counter() - t
t = time.perf_counter(); p = model.predict(s, horizons_days=(30, 90, 365), horizon_days=365); predict = time.perf_counter() - t
print(json.dumps(dict(fit=fit, predict=predict, unique_rows=int(s.groupby(["frequency", "recency", "T"]).ngroups),
                      params=dict(zip(model.params.parameter, model.params.estimate.round(3))),
                      clv=float(p.clv.sum()), peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""

LIFETIMES = POPULATION + """
import json, resource, time, warnings
from lifetimes import BetaGeoFitter, GammaGammaFitter
s = population({n})
warnings.simplefilter("ignore")
t = time.perf_counter()
bg = BetaGeoFitter().fit(s.frequency, s.recency, s["T"])
repeat = s[s.frequency > 0]
gg = GammaGammaFitter().fit(repeat.frequency, repeat.monetary_value)
print(json.dumps(dict(fit=time.perf_counter() - t, params={**bg.params_.round(3).to_dict(), **gg.params_.round(3).to_dict()},
                      peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def run(code: str, n: int) -> dict:
    out = subprocess.run([sys.executable, "-c", code.replace("{n}", str(n))], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.splitlines()[-1])


def main(n: int):
    ours = run(OURS, n=n)
    theirs = run(LIFETIMES, n=n)
    print(f"CLV benchmark: {n:,} customers ({ours['unique_rows']:,} distinct frequency/recency/T rows)")
    print(f"  fit BG/NBD + Gamma-Gamma  {ours['fit']:6.2f} s  (target ≤ 5 s)  peak {ours['peak_mb']:,.0f} MB")
    print(f"  lifetimes on the raw rows {theirs['fit']:6.2f} s  peak {theirs['peak_mb']:,.0f} MB  "
          f"→ {theirs['fit'] / ours['fit']:.1f}× faster (target ≥ 5×)")
    print(f"  predict (P(alive), 3 horizons, spend, 12-month CLV, bands) {ours['predict']:6.2f} s  (target ≤ 5 s)")
    print(f"  estimates, ours:      {ours['params']}")
    print(f"  estimates, lifetimes: {theirs['params']}")
    print("  truth:                {'r': 1.5, 'alpha': 4.0, 'a': 0.8, 'b': 4.0, 'p': 6.0, 'q': 4.0, 'gamma': 1500.0}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
