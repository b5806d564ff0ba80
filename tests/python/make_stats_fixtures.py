#!/usr/bin/env python3
"""Statistics fixtures computed by SciPy 1.10.1 and numpy (Debian's python3-scipy / python3-numpy):
the independent reference msconv::stats (core/src/stats) is checked against.

Writes OUT/stats.json, each case with its inputs and SciPy's answer:
  summary    mean, np.std(ddof=1) and scipy.stats.t.interval(conf, n - 1, loc=mean,
             scale=std / sqrt(n)) for n = 2..12, and a constant vector (std 0, where t.interval
             answers NaN for scale 0: its interval is ttest_1samp(x, mean).confidence_interval(),
             the limit [mean, mean]); *_polished: the interval from the polished quantile (t_ppf);
  t_cdf      scipy.stats.t.cdf(t, df), tails included (down to 1e-289), df from 1 to 200 plus
             fractional, large and infinite df;
  t_ppf      [p, df, scipy.stats.t.ppf(p, df), the same polished by Newton steps on t.cdf / t.sf]
             (polish_ppf says why), p from 1e-12 to 1 - 1e-10;
  paired_t   scipy.stats.ttest_rel(a, b): statistic, pvalue, confidence_interval(conf) (and that
             interval from the polished quantile: mean(d) +- q std(d, ddof=1) / sqrt(n)), on
             random a, b (n = 2, 3, 5, 10, 30), equal vectors (t, p NaN) and a constant offset
             (t inf, p 0);
  wilcoxon   scipy.stats.wilcoxon(a, b) with its defaults: exact without ties (n = 6..12, 50),
             exact with ties (SciPy truncates R+), the normal approximation with zeros and ties,
             n = 51 and 60 (and the approximation's z from method='approx');
  holm       statsmodels' multipletests(method='holm') transcribed (statsmodels is not
             installed): sort, p_(i) * (m - i), running maximum, cap at 1, NaN left out;
  mcnemar    scipy.stats.binomtest(b, b + c, 0.5).pvalue (b + c = 0: p = 1 by definition,
             binomtest refuses n = 0);
  percentile numpy.percentile(x, [100 (1 - conf) / 2, 100 (1 + conf) / 2]) (linear).
Non-finite numbers are written as the strings "nan", "inf" and "-inf" (JSON has none).
"""
import json
import math
import os
import sys
import warnings

import numpy as np
from scipy import stats


def num(v):
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def nums(vs):
    return [num(v) for v in vs]


# --- statsmodels.stats.multitest.multipletests(pvals, method='holm'), transcribed -------------
def holm_statsmodels(pvals):
    pvals = np.asarray(pvals, dtype=float)
    sortind = np.argsort(pvals)
    pvals = np.take(pvals, sortind)
    ntests = len(pvals)
    pvals_corrected_raw = pvals * np.arange(ntests, 0, -1)
    pvals_corrected = np.maximum.accumulate(pvals_corrected_raw)
    pvals_corrected[pvals_corrected > 1] = 1
    out = np.empty_like(pvals_corrected)
    out[sortind] = pvals_corrected
    return out


def holm_with_nan(p):
    p = np.asarray(p, dtype=float)
    out = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = holm_statsmodels(p[ok])
    return out


def polish_ppf(t, p, df):
    """t.ppf(p, df) refined by two Newton steps on SciPy's own t.cdf (t.sf above the median, where
    1 - p is exact): t.ppf (cdflib's search) stops at about 5e-9 relative for some df, t.cdf and
    t.sf are accurate to about 1e-13."""
    for _ in range(2):
        if p == 0.5 or not np.isfinite(t):
            break
        if p < 0.5:
            t -= (stats.t.cdf(t, df) - p) / stats.t.pdf(t, df)
        else:
            t += (stats.t.sf(t, df) - (1 - p)) / stats.t.pdf(t, df)
    return t


def polished_quantile(p, df):
    return polish_ppf(float(stats.t.ppf(p, df)), p, df)


def summaries(rng):
    cases = []
    for n in range(2, 13):
        x = rng.normal(0.9, 0.05 * n, n)
        conf = [0.95, 0.9, 0.99][n % 3]
        mean, std = np.mean(x), np.std(x, ddof=1)
        lo, hi = stats.t.interval(conf, n - 1, loc=mean, scale=std / np.sqrt(n))
        half = polished_quantile((1 + conf) / 2, n - 1) * std / np.sqrt(n)
        cases.append({"x": nums(x), "confidence": conf, "mean": num(mean), "std": num(std),
                      "ci_lo": num(lo), "ci_hi": num(hi),
                      "ci_lo_polished": num(mean - half), "ci_hi_polished": num(mean + half)})
    x = np.full(7, 0.75)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SciPy's precision-loss warning on identical values
        ci = stats.ttest_1samp(x, 0.75).confidence_interval(0.95)
    cases.append({"x": nums(x), "confidence": 0.95, "mean": num(np.mean(x)),
                  "std": num(np.std(x, ddof=1)), "ci_lo": num(ci.low), "ci_hi": num(ci.high),
                  "ci_lo_polished": num(ci.low), "ci_hi_polished": num(ci.high)})
    return cases


def t_points():
    cdf, ppf = [], []
    dfs = [1, 1.5, 2, 3, 4, 5, 7, 10, 15, 29, 30, 31, 50, 100, 150, 200, 1000, 1e5, 1e7]
    ts = [-1e6, -1000, -300, -40, -12.5, -6, -3.5, -2, -1.2, -1, -0.5, -0.01, -1e-7, 0, 1e-6,
          0.3, 1, 1.7, 2.5, 7, 50, 1e4]
    for df in dfs:
        for t in ts:
            cdf.append([t, df, num(stats.t.cdf(t, df))])
    # Tails: the t whose cdf is 1e-10, 1e-30, 1e-100 (where they exist for the df), and back.
    for df in [1, 2, 3, 5, 10, 30, 100, 200]:
        for p in [1e-10, 1e-30, 1e-100]:
            t = float(stats.t.ppf(p, df))
            cdf.append([t, df, num(stats.t.cdf(t, df))])
    for t in [-38, -8, -1.5, 0, 0.5, 3]:
        cdf.append([t, "inf", num(stats.t.cdf(t, np.inf))])
    ps = [1e-12, 1e-10, 1e-6, 1e-3, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.45, 0.499,
          0.5, 0.501, 0.6, 0.75, 0.8, 0.9, 0.95, 0.975, 0.99, 0.999, 1 - 1e-10]
    for df in [1, 1.5, 2, 3, 4, 5, 6, 9, 10, 12, 19, 29, 30, 49, 99, 199, 200, 1000, 1e5, np.inf]:
        for p in ps:
            raw = float(stats.t.ppf(p, df))
            ppf.append([p, num(df), num(raw), num(polish_ppf(raw, p, df))])
    return cdf, ppf


def paired(rng):
    cases = []

    def add(a, b, conf):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # as above, for equal vectors and a constant offset
            r = stats.ttest_rel(a, b)
            ci = r.confidence_interval(conf)
        d = np.asarray(a) - np.asarray(b)
        n, diff = len(d), np.mean(d)
        half = polished_quantile((1 + conf) / 2, n - 1) * np.std(d, ddof=1) / np.sqrt(n)
        cases.append({"a": nums(a), "b": nums(b), "confidence": conf, "diff": num(diff),
                      "t": num(r.statistic), "p": num(r.pvalue),
                      "ci_lo": num(ci.low), "ci_hi": num(ci.high),
                      "ci_lo_polished": num(diff - half), "ci_hi_polished": num(diff + half)})

    for n in [2, 3, 5, 10, 30]:
        for conf, shift in [(0.95, 0.0), (0.95, 0.02), (0.9, 0.005)]:
            a = rng.normal(0.95, 0.02, n)
            b = a - shift + rng.normal(0, 0.01, n)
            add(a, b, conf)
    a = rng.normal(0.9, 0.03, 8)
    add(a, a.copy(), 0.95)  # every difference zero: t, p NaN; interval [0, 0]
    a = rng.integers(0, 64, 9) / 8.0  # dyadic: a - b is exactly 0.25 everywhere
    add(a, a - 0.25, 0.95)  # constant offset: t inf, p 0, interval [0.25, 0.25]
    add(a - 0.25, a, 0.95)  # and -inf
    return cases


def wilcoxon(rng):
    cases = []

    def add(a, b, kind):
        d = np.asarray(a) - np.asarray(b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = stats.wilcoxon(a, b)
            # SciPy 1.10.1's method='auto': exact when len(d) <= 50 and no d is zero.
            exact = len(d) <= 50 and not np.any(d == 0)
            z = None if exact else getattr(stats.wilcoxon(a, b, method="approx"), "zstatistic")
        cases.append({"kind": kind, "a": nums(a), "b": nums(b), "statistic": num(r.statistic),
                      "p": num(r.pvalue), "exact": bool(exact),
                      "n": int(len(d) if exact else np.count_nonzero(d)),
                      "zeros": int(np.sum(d == 0)), "z": None if z is None else num(z)})

    for n in range(6, 13):  # exact, no ties
        a = rng.normal(0.9, 0.02, n)
        add(a, a - rng.normal(0.004, 0.01, n), "exact")
    a = rng.normal(0, 1, 50)
    add(a, a - rng.normal(0.3, 1, 50), "exact n=50")
    a = np.arange(1.0, 11.0)  # every difference positive: the most extreme exact p
    add(a, np.zeros(10), "exact one-sided extreme")
    a = np.array([1.0, -2, 2, 4, 5, 6, 3, 7, 1.5, 8])  # ties, no zeros: exact, R+ = 51.5 -> 51
    add(a, np.zeros(10), "exact ties")
    a = np.array([0.5, -0.5, 1, 1, -1.5, 2, 2.5, 2.5, 3, 4, 4, -4])  # R+ = 60.5 -> 60
    add(a, np.zeros(12), "exact ties")
    a = np.array([1.0, -1, 2, -2, 3, -3, 4])  # R+ at the centre of the distribution: p = 1
    add(a, np.zeros(7), "exact centre")
    a = rng.integers(-3, 6, 15).astype(float)  # ties and zeros: approximation
    add(a, np.zeros(15), "approx ties zeros")
    a = rng.integers(0, 4, 20) / 4.0
    add(a, rng.integers(0, 4, 20) / 4.0, "approx ties zeros")
    a = np.array([0.0, 0.0, 0.5, 1.0, -0.25, 0.75, 2.0, 0.5])  # small after dropping zeros
    add(a, np.zeros(8), "approx small")
    a = rng.normal(0, 1, 51)
    add(a, a - rng.normal(0.2, 1, 51), "approx n=51")
    a = rng.normal(0.9, 0.03, 60)
    add(a, a - rng.normal(0.01, 0.02, 60), "approx n=60")
    a = np.round(rng.normal(0, 2, 80))  # ties and zeros, n = 80
    add(a, np.zeros(80), "approx ties zeros n=80")
    return cases


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240611)
    cdf, ppf = t_points()

    holm_cases = []
    for p in [[0.01, 0.04, 0.03, 0.005], [0.2, 0.2, 0.01, 0.5, 0.04],
              [0.6, 0.9, 0.3], [0.001], [], [0.02, float("nan"), 0.01, 0.5, float("nan")],
              list(rng.uniform(0, 0.2, 12)), [0.0, 1.0, 0.5, 0.5, 1e-12]]:
        holm_cases.append({"p": nums(p), "adjusted": nums(holm_with_nan(p))})

    mcnemar_cases = []
    for b, c in [(0, 0), (0, 5), (5, 0), (7, 20), (20, 7), (300, 340), (10, 10), (1, 2), (0, 1),
                 (50, 51), (1000, 1100), (0, 60), (3000, 3200), (13, 29), (400, 200)]:
        p = 1.0 if b + c == 0 else stats.binomtest(b, b + c, 0.5).pvalue
        mcnemar_cases.append({"b": b, "c": c, "p": num(p)})

    percentile_cases = []
    for x, conf in [(rng.normal(0.01, 0.004, 1000), 0.95), (rng.normal(0, 1, 7), 0.95),
                    (np.array([2.0, 1.0]), 0.95), (np.array([3.5]), 0.95),
                    (rng.integers(0, 5, 40).astype(float), 0.9),
                    (rng.exponential(1.0, 2001), 0.99)]:
        q = [100 * (1 - conf) / 2, 100 * (1 + conf) / 2]
        lo, hi = np.percentile(x, q)
        percentile_cases.append({"x": nums(x), "confidence": conf, "lo": num(lo), "hi": num(hi)})

    with open(os.path.join(out, "stats.json"), "w") as f:
        json.dump({"scipy": __import__("scipy").__version__, "numpy": np.__version__,
                   "summary": summaries(rng), "t_cdf": cdf, "t_ppf": ppf,
                   "paired_t": paired(rng), "wilcoxon": wilcoxon(rng), "holm": holm_cases,
                   "mcnemar": mcnemar_cases, "percentile": percentile_cases}, f,
                  allow_nan=False)


if __name__ == "__main__":
    main(sys.argv[1])
