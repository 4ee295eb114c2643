"""The inner loop of PBO by CSCV (`metrics.research.pbo_from_blocks`), compiled by numba.

For each pair of complementary combinations of blocks, every trial's in-sample and
out-of-sample per-bar Sharpe ratios come from its per-block sums, sums of squares and counts;
then, for each of the pair's two combinations, the in-sample best (first on ties) and the average
rank of its out-of-sample Sharpe among all trials. One pass over the trials per pair with two
rows of N values, where array code needs a dozen passes over pairs × N temporaries.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def _sharpes(total, square, count, flat_tolerance, out) -> None:
    # mean / std(ddof=1) from sums; 0 when the deviation is within rounding of none (flat). The
    # ratio is computed for every trial and then kept or not, without a branch, so that the loop
    # runs on vector registers ("numpy" errors: a division by zero is inf, not an exception).
    for trial in range(len(total)):
        mean = total[trial] / count
        deviation = math.sqrt(max((square[trial] - total[trial] * mean) / (count - 1.0), 0.0))
        ratio = mean / deviation
        out[trial] = 0.0 if deviation <= flat_tolerance * abs(mean) else ratio


@njit(cache=True)
def _choose(in_sample, out_of_sample, position, logits, chosen_in, chosen_out) -> None:
    n_trials = len(in_sample)
    best = 0
    for trial in range(1, n_trials):
        if in_sample[trial] > in_sample[best]:
            best = trial
    value = out_of_sample[best]
    below = 0
    ties = 0
    for trial in range(n_trials):
        if out_of_sample[trial] < value:
            below += 1
        elif out_of_sample[trial] == value:
            ties += 1
    # scipy.stats.rankdata(method="average"): below + (ties including itself + 1) / 2.
    omega = (below + (ties + 1) / 2.0) / (n_trials + 1)
    logits[position] = math.log(omega / (1.0 - omega))
    chosen_in[position] = in_sample[best]
    chosen_out[position] = value


@njit(cache=True, error_model="numpy")
def cscv_pairs(halves, sums, squares, counts, flat_tolerance):
    """λ, R[n*] and R̄[n*] of every combination: positions [0, P) for the combinations listed in
    `halves` (P × S/2 block numbers), [P, 2P) for their complements. `sums` and `squares` are
    S × N (one row per block, contiguous), `counts` the S block lengths. Each trial's in-sample
    sums are added block by block in the order `halves` lists them, a row of N trials at a time
    (vector code; every trial's sum is still the same additions in the same order)."""
    n_pairs, half = halves.shape
    n_blocks, n_trials = sums.shape
    total_count = 0.0
    for block in range(n_blocks):
        total_count += counts[block]
    total_sum = np.zeros(n_trials)
    total_square = np.zeros(n_trials)
    for trial in range(n_trials):
        for block in range(n_blocks):
            total_sum[trial] += sums[block, trial]
            total_square[trial] += squares[block, trial]
    logits = np.empty(2 * n_pairs)
    chosen_in = np.empty(2 * n_pairs)
    chosen_out = np.empty(2 * n_pairs)
    first = np.empty(n_trials)
    second = np.empty(n_trials)
    total = np.empty(n_trials)
    square = np.empty(n_trials)
    for pair in range(n_pairs):
        in_count = 0.0
        for k in range(half):
            in_count += counts[halves[pair, k]]
        out_count = total_count - in_count
        total[:] = 0.0
        square[:] = 0.0
        for k in range(half):
            block_sums = sums[halves[pair, k]]
            block_squares = squares[halves[pair, k]]
            for trial in range(n_trials):
                total[trial] += block_sums[trial]
                square[trial] += block_squares[trial]
        _sharpes(total, square, in_count, flat_tolerance, first)
        for trial in range(n_trials):
            total[trial] = total_sum[trial] - total[trial]
            square[trial] = total_square[trial] - square[trial]
        _sharpes(total, square, out_count, flat_tolerance, second)
        _choose(first, second, pair, logits, chosen_in, chosen_out)
        _choose(second, first, n_pairs + pair, logits, chosen_in, chosen_out)
    return logits, chosen_in, chosen_out
