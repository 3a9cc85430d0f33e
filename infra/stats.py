"""Confidence intervals over seeds (§5.4: "three seeds with 95% CIs"), with no dependency beyond math.

The paper reports each curve as a mean over 3 training seeds with a 95% confidence interval. With so few seeds
the interval is Student's t, not the normal one: t_{0.975, 2} = 4.30, not 1.96.
  * `mean_ci`: a curve's mean over seeds and its half-width t_{0.975, n-1} * s / sqrt(n), turn by turn.
  * `welch_ci`: the difference of two such means (model A against model B) and its own 95% interval. "A beats
    B" is read off this one: two 95% CIs may overlap a little while the difference's interval is clear of 0
    (with equal spreads and many seeds, CIs that just touch mean p ~ 0.006). `python report.py compare A B`
    prints it for two runs.
  * `t975`: the t quantile for any degrees of freedom, whole or not (Welch's are not), so scipy is not needed.
Deviations: the paper does not say how its CIs were computed; Student's t over seeds is this project's choice.

    python -c "from infra import stats; print(stats.mean_ci([[0.5], [0.6], [0.7]]))"   # ([0.6], [0.248...])
"""
from __future__ import annotations

import math


def mean_ci(curves: list[list[float]]) -> tuple[list[float], list[float] | None]:
    """Mean over seeds, and the 95% CI half-width t_{0.975,n-1} * s / sqrt(n) (s with Bessel's
    correction), computed turn by turn. The half-width is None for a single seed."""
    n = len(curves)
    if n == 0 or len({len(c) for c in curves}) != 1:
        raise ValueError(f"mean_ci needs one or more curves of equal length, got lengths {[len(c) for c in curves]}.")
    mean = [sum(col) / n for col in zip(*curves)]   # averaging keeps a non-decreasing curve non-decreasing
    if n == 1:
        return mean, None
    sd = [math.sqrt(sum((x - m) ** 2 for x in col) / (n - 1)) for col, m in zip(zip(*curves), mean)]
    t = t975(n - 1)   # once: each call is a bisection
    return mean, [t * s / math.sqrt(n) for s in sd]


def half_width(values: list[float]) -> float:
    """The 95% CI half-width of one number measured once per seed (two or more seeds)."""
    return mean_ci([[v] for v in values])[1][0]


def welch_ci(a: tuple[float, float, int], b: tuple[float, float, int]) -> tuple[float, float]:
    """mean_a - mean_b for two numbers each measured over seeds, given as (mean, sd, n) with n >= 2, and the
    95% CI half-width of that difference by Welch's t: the two variances need not be equal, and the degrees of
    freedom come from them (Welch-Satterthwaite). This is the interval to read "A beats B" off: two 95% CIs
    can overlap a little while the difference's CI lies clear of 0."""
    (mean_a, sd_a, n_a), (mean_b, sd_b, n_b) = a, b
    va, vb = sd_a ** 2 / n_a, sd_b ** 2 / n_b           # the squared standard errors of the two means
    if va + vb == 0:
        return mean_a - mean_b, 0.0
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))
    return mean_a - mean_b, t975(df) * math.sqrt(va + vb)


def t975(df: float) -> float:
    """The 97.5% quantile of Student's t with df degrees of freedom (two-sided 95%), for any df >= 1, whole
    or not (Welch's df is not): bisection on the tail P(T > t) = I_{df/(df+t^2)}(df/2, 1/2) / 2, so scipy is
    not needed."""
    lo, hi = 0.0, 20.0   # t975(1) = 12.71 is the largest
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _betainc(df / 2, 0.5, df / (df + mid * mid)) / 2 > 0.025 else (lo, mid)
    return (lo + hi) / 2


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction (modified Lentz;
    Numerical Recipes §6.4), which converges fast for x < (a + 1) / (a + b + 2), and by
    I_x(a, b) = 1 - I_{1-x}(b, a) beyond."""
    if x <= 0 or x >= 1:
        return float(x >= 1)
    if x > (a + 1) / (a + b + 2):
        return 1 - _betainc(b, a, 1 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    f = c = 1.0
    d = 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1 + num * d
        d = 1 / (d if abs(d) > 1e-300 else 1e-300)
        c = 1 + num / (c if abs(c) > 1e-300 else 1e-300)
        f *= c * d
        if abs(1 - c * d) < 1e-15:
            break
    return front * (f - 1) / a
