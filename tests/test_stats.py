"""stats.py: the t quantile against published values and an independent integration, the mean's CI by hand,
and Welch's interval for a difference by its coverage (what a 95% CI promises) where the pooled one fails."""
import math
import random
import statistics

import pytest

from infra import stats

# t_{0.975, df}, df = 1..30, as printed in the standard tables (4 decimals)
TABLE = [12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788,
         2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639,
         2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423]


def _t975_by_integration(df: float) -> float:
    """The same quantile another way: Simpson's rule on Student's density, then bisection."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    density = lambda x: c * (1 + x * x / df) ** (-(df + 1) / 2)

    def cdf(x, n=4000):
        h = x / n
        return 0.5 + h / 3 * sum((1 if i in (0, n) else 4 if i % 2 else 2) * density(i * h) for i in range(n + 1))
    lo, hi = 0.0, 20.0
    for _ in range(40):
        lo, hi = ((lo + hi) / 2, hi) if cdf((lo + hi) / 2) < 0.975 else (lo, (lo + hi) / 2)
    return lo


def test_t975_matches_the_tables_and_an_integration():
    assert [stats.t975(df) for df in range(1, 31)] == pytest.approx(TABLE, abs=1e-4)
    assert stats.t975(100) == pytest.approx(1.98397, abs=1e-5)
    assert stats.t975(1e7) == pytest.approx(1.959964, abs=1e-5)           # the normal quantile in the limit
    for df in (1.5, 2.8, 7.3):                                               # Welch's degrees of freedom are not whole
        assert stats.t975(df) == pytest.approx(_t975_by_integration(df), abs=2e-3)
    assert stats.t975(2) > stats.t975(2.8) > stats.t975(3)


def test_mean_ci_by_hand():
    mean, ci = stats.mean_ci([[0.5, 0.1], [0.6, 0.1], [0.7, 0.1]])
    assert mean == pytest.approx([0.6, 0.1])
    # s = 0.1 (Bessel), t_{0.975, 2} = 4.302653 -> 4.302653 * 0.1 / sqrt(3)
    assert ci == pytest.approx([4.302653 * 0.1 / math.sqrt(3), 0.0], abs=1e-6)
    assert stats.mean_ci([[0.2, 0.4]]) == ([0.2, 0.4], None)
    assert stats.half_width([0.5, 0.6, 0.7]) == pytest.approx(0.2484, abs=1e-4)
    with pytest.raises(ValueError):
        stats.mean_ci([[0.1], [0.1, 0.2]])


def test_welch_ci_by_hand():
    # equal spreads and sizes: df = 2 (n - 1) and the half-width t_{0.975, 2n-2} * s * sqrt(2 / n)
    diff, hw = stats.welch_ci((0.7, 0.1, 3), (0.4, 0.1, 3))
    assert diff == pytest.approx(0.3) and hw == pytest.approx(2.7764 * 0.1 * math.sqrt(2 / 3), abs=1e-4)
    assert stats.welch_ci((0.5, 0.0, 3), (0.2, 0.0, 3)) == pytest.approx((0.3, 0.0))
    # one spread far larger: the df fall towards that group's n - 1 = 2
    _, hw = stats.welch_ci((0.5, 1.0, 3), (0.2, 1e-4, 30))
    assert hw == pytest.approx(stats.t975(2) * 1.0 / math.sqrt(3), rel=1e-3)


def test_welch_ci_covers_the_true_difference_95_percent_of_the_time():
    """3 seeds with a wide spread against 6 with a narrow one: Welch's interval holds its promise, the pooled
    interval (one shared variance) and the normal one (1.96) do not."""
    rng, trials = random.Random(0), 3000
    welch = pooled = normal = 0
    for _ in range(trials):
        a = [rng.gauss(0.5, 0.3) for _ in range(3)]
        b = [rng.gauss(0.2, 0.05) for _ in range(6)]
        sa, sb = statistics.stdev(a), statistics.stdev(b)
        diff, hw = stats.welch_ci((statistics.mean(a), sa, 3), (statistics.mean(b), sb, 6))
        welch += abs(diff - 0.3) <= hw
        s2 = (2 * sa ** 2 + 5 * sb ** 2) / 7
        pooled += abs(diff - 0.3) <= stats.t975(7) * math.sqrt(s2 * (1 / 3 + 1 / 6))
        normal += abs(diff - 0.3) <= 1.96 * math.sqrt(sa ** 2 / 3 + sb ** 2 / 6)
    assert 0.93 <= welch / trials <= 0.975
    assert pooled / trials < 0.90 and normal / trials < 0.90
