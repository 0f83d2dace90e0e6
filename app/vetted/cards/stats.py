"""The statistics a spot-check and a card comparison need, and nothing more.

`wilson`: the Wilson score 95% interval of a rate k/n (honest at small n and at 0 or n,
where the textbook normal interval collapses to a point).

`agree`: does a claimed rate agree with the rate measured here? The test depends on what
the claim says about itself, and the result names the test used:
- a claim with a sample size (k/n recoverable): Fisher's exact test on the 2×2 table,
  two-sided, contradiction when p < 0.05;
- a claim with only an interval: the two 95% intervals must overlap (conservative: two
  overlapping intervals can still differ);
- a bare figure: it must lie inside the local 95% interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p of Fisher's exact test for [[a, b], [c, d]]: the probability, with the
    margins fixed, of a table at most as likely as the one observed."""
    row1, col1, n = a + b, a + c, a + b + c + d
    lo, hi = max(0, col1 - (n - row1)), min(row1, col1)

    def logp(x: int) -> float:
        return _log_comb(row1, x) + _log_comb(n - row1, col1 - x) - _log_comb(n, col1)

    observed = logp(a)
    total = sum(math.exp(lp) for x in range(lo, hi + 1) if (lp := logp(x)) <= observed + 1e-9)
    return min(1.0, total)


@dataclass(frozen=True)
class Agreement:
    contradicts: bool
    test: str  # "Fisher's exact test, p = 0.003", "95% intervals overlap", …


def agree(claim_value: float, claim_ci: tuple[float, float] | None, claim_n: int | None,
          k: int, n: int) -> Agreement:
    lo, hi = wilson(k, n)
    claim_value = min(1.0, max(0.0, claim_value))  # an unsigned card can say anything; a rate is in [0, 1]
    if claim_n and claim_n > 0:
        ck = round(claim_value * claim_n)
        p = fisher_exact(ck, claim_n - ck, k, n - k)
        return Agreement(p < ALPHA, f"Fisher's exact test against the card's {ck}/{claim_n}, p = {p:.3g}")
    if claim_ci is not None:
        c_lo, c_hi = claim_ci
        apart = c_hi < lo or c_lo > hi
        return Agreement(apart, "the 95% intervals " + ("do not overlap" if apart else "overlap")
                         + " (the card gives no sample size)")
    outside = not lo <= claim_value <= hi
    return Agreement(outside, "the card's figure lies " + ("outside" if outside else "inside")
                     + " the local 95% interval (the card gives no sample size or interval)")
