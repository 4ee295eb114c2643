"""Research statistics (SPEC §13.1): is a backtest's result real?

Pure: numpy, scipy and `arch`, no Django. Every function takes the per-bar returns of SPEC §5
(r_1 = E_1/C − 1, then r_t = E_t/E_{t−1} − 1) as a 1-D array, or a T×N matrix with one column per
trial on their common bars. "Sharpe" here is per bar, not annualised: SR = mean(r)/std(r, ddof=1).

- PSR, Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier".
- DSR, Bailey & López de Prado (2014), "The Deflated Sharpe Ratio".
- PBO by combinatorially symmetric cross-validation, Bailey, Borwein, López de Prado & Zhu (2015),
  "The Probability of Backtest Overfitting". Computed from per-block sums, sums of squares and
  counts (`block_statistics`), so a caller may stream the matrix column chunk by column chunk.
- Hansen's SPA reality check and stationary-bootstrap confidence intervals: `arch.bootstrap`.
- The overfitting block of a search (`overfitting_report`) from `TrialStatistics`: everything it
  needs of the trials, computed column by column, so that separate groups of trials (a sweep's
  chunks, on separate workers) give, joined, exactly the numbers of the whole matrix.
- Break-even cost of a run by bisection.

Bad parameters raise ValueError with a message that names the parameter; the `check_*` functions
are public so that an API can validate its input before any work starts.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from arch.bootstrap import StationaryBootstrap, optimal_block_length
from scipy import fft as scipy_fft
from scipy import sparse, stats

from metrics.calculations import DAYS_PER_YEAR, per_period_risk_free

RESEARCH_SPEC_VERSION = "1.0"

EULER_MASCHERONI = 0.5772156649

DEFAULT_PARTITIONS = 16
MIN_PARTITIONS = 4
MAX_PARTITIONS = 24
# CSCV needs blocks long enough for a Sharpe ratio: at least ten bars per block.
MIN_BARS_PER_PARTITION = 10

MAX_RESAMPLES = 10_000
DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0

LOGIT_HISTOGRAM_BINS = 20
LOGIT_HISTOGRAM_RANGE = (-6.0, 6.0)

BREAKEVEN_SEARCH_BPS = (0.0, 500.0)
BREAKEVEN_TOLERANCE_BPS = 0.1

# A trial whose returns over a set of bars are constant took no risk there: its Sharpe ratio is
# undefined and counts as 0 when trials are compared. "Constant" allows for the rounding residue
# of a variance computed from sums of squares (≈1e-8 of the mean for a constant series).
FLAT_RELATIVE_DEVIATION = 1e-6

BOOTSTRAP_METRICS = ("cagr", "sharpe", "sortino", "volatility", "max_drawdown")
# Resamples evaluated together: 512 × 5,000 bars is 20 MB per intermediate array.
_BOOTSTRAP_BLOCK = 512


# --- parameter checks --------------------------------------------------------------------------


def check_partitions(partitions: object, n_bars: int | None = None) -> int:
    """S: an even integer in 4..24, and at most a tenth of the bars when `n_bars` is given."""
    if isinstance(partitions, bool) or not isinstance(partitions, (int, np.integer)):
        raise ValueError(f"partitions must be an even integer between 4 and 24, got {partitions!r}")
    partitions = int(partitions)
    if partitions % 2 or not MIN_PARTITIONS <= partitions <= MAX_PARTITIONS:
        raise ValueError(f"partitions must be an even integer between 4 and 24, got {partitions}")
    if n_bars is not None and partitions * MIN_BARS_PER_PARTITION > n_bars:
        raise ValueError(
            f"partitions must be at most a tenth of the bars ({n_bars // MIN_BARS_PER_PARTITION} "
            f"for {n_bars} bars), got {partitions}"
        )
    return partitions


def check_confidence(confidence: object) -> float:
    """A confidence level strictly between 0 and 1."""
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float, np.number)):
        raise ValueError(
            f"confidence must be a number strictly between 0 and 1, got {confidence!r}"
        )
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")
    return float(confidence)


def check_resamples(resamples: object, name: str = "resamples") -> int:
    """A number of bootstrap resamples in 1..10,000."""
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)):
        raise ValueError(f"{name} must be an integer between 1 and 10,000, got {resamples!r}")
    if not 1 <= int(resamples) <= MAX_RESAMPLES:
        raise ValueError(f"{name} must be between 1 and 10,000, got {resamples}")
    return int(resamples)


def check_block_length(block_length: object, name: str = "block_length") -> int:
    """A positive integer block length (bars)."""
    if isinstance(block_length, bool) or not isinstance(block_length, (int, np.integer)):
        raise ValueError(f"{name} must be a positive integer, got {block_length!r}")
    if int(block_length) < 1:
        raise ValueError(f"{name} must be a positive integer, got {block_length}")
    return int(block_length)


def check_seed(seed: object) -> int:
    """A non-negative integer seed (numpy's generators accept no other)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


# --- Sharpe, PSR, DSR ------------------------------------------------------------------------


def per_bar_sharpe(returns: np.ndarray) -> float | None:
    """mean(r)/std(r, ddof=1); None with fewer than two bars, non-finite or constant returns."""
    values = _finite_vector(returns, "returns")
    if values is None or len(values) < 2:
        return None
    # Equal values up to rounding have no deviation; residue would give an arbitrary huge ratio.
    if values.max() - values.min() <= 1e-12 * np.abs(values).max():
        return None
    return float(values.mean() / np.std(values, ddof=1))


def probabilistic_sharpe_ratio(returns: np.ndarray, sr_benchmark: float = 0.0) -> float | None:
    """PSR(SR*) = Φ((SR − SR*)·√(n−1) / √(1 − γ3·SR + ((γ4 − 1)/4)·SR²)).

    γ3 is the biased sample skewness, γ4 the (non-excess) kurtosis. None when the Sharpe ratio
    is undefined (see `per_bar_sharpe`).
    """
    sharpe = per_bar_sharpe(returns)
    if sharpe is None:
        return None
    values = np.asarray(returns, dtype=float)
    skewness = float(stats.skew(values))
    kurtosis = float(stats.kurtosis(values, fisher=False))
    return _psr(sharpe, len(values), skewness, kurtosis, sr_benchmark)


def deflated_sharpe_ratio(
    best_returns: np.ndarray, trial_sharpes: np.ndarray | list[float | None]
) -> dict[str, float | int | None]:
    """DSR = PSR(SR0) of the best trial, SR0 the expected maximum Sharpe of N unskilled trials.

    SR0 = √V·((1−γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e))), V = var(SR_i, ddof=1), γ the
    Euler–Mascheroni constant. `trial_sharpes` are the per-bar Sharpes of every trial that
    completed (None/NaN entries, trials without a Sharpe, do not count); N = 1 gives SR0 = 0.
    Returns {"dsr", "sr0", "psr", "n_trials"}; `psr` is the best trial's PSR(0).
    """
    sharpes = np.asarray([np.nan if s is None else s for s in trial_sharpes], dtype=float)
    sharpes = sharpes[np.isfinite(sharpes)]
    n_trials = len(sharpes)
    if n_trials == 0:
        raise ValueError("trial_sharpes must hold at least one finite Sharpe ratio")
    psr = probabilistic_sharpe_ratio(best_returns, 0.0)
    if n_trials == 1:
        return {"dsr": psr, "sr0": 0.0, "psr": psr, "n_trials": 1}
    sr0 = expected_maximum_sharpe(float(np.var(sharpes, ddof=1)), n_trials)
    return {
        "dsr": probabilistic_sharpe_ratio(best_returns, sr0),
        "sr0": sr0,
        "psr": psr,
        "n_trials": n_trials,
    }


def expected_maximum_sharpe(variance: float, n_trials: int) -> float:
    """SR0: the expected maximum of `n_trials` unskilled Sharpes with this variance."""
    if n_trials < 2:
        return 0.0
    return math.sqrt(variance) * (
        (1.0 - EULER_MASCHERONI) * stats.norm.ppf(1.0 - 1.0 / n_trials)
        + EULER_MASCHERONI * stats.norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    )


def _psr(
    sharpe: float, n: int, skewness: float, kurtosis: float, sr_benchmark: float
) -> float | None:
    # 1 − γ3·SR + (γ4−1)/4·SR² ≥ (1 − γ3·SR/2)² ≥ 0 since γ4 ≥ 1 + γ3²; zero only in degenerate
    # two-valued samples, where the ratio is undefined.
    variance = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not variance > 0 or not math.isfinite(variance):
        return None
    return float(stats.norm.cdf((sharpe - sr_benchmark) * math.sqrt(n - 1) / math.sqrt(variance)))


# --- trials column by column -------------------------------------------------------------------

# Per-trial statistics are computed on groups of this many columns at a time, each group copied to
# column-major order first. Every column then goes through the same operations on the same
# contiguous values whatever group it is in, so statistics computed group by group — in one call,
# or in separate processes over separate column ranges and joined — are exactly those of the whole
# matrix, and the temporaries stay at bars × _GROUP (10 MB for 20 years of daily bars).
_GROUP = 256


def _column_groups(matrix: np.ndarray, group: int = _GROUP):
    """(first column, finite column-major copy of the group) for each group of columns."""
    for start in range(0, matrix.shape[1], group):
        columns = np.asfortranarray(matrix[:, start : start + group], dtype=np.float64)
        if not np.isfinite(columns).all():
            raise ValueError("returns_matrix must be finite (no NaN or infinity)")
        yield start, columns


def _column_sharpes(columns: np.ndarray) -> np.ndarray:
    """Per-bar Sharpe of each column of a column-major group; NaN where undefined (constant)."""
    deviation = np.std(columns, axis=0, ddof=1)
    flat = columns.max(axis=0) - columns.min(axis=0) <= 1e-12 * np.abs(columns).max(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpes = columns.mean(axis=0) / deviation
    sharpes[flat] = np.nan
    return sharpes


def trial_sharpes(returns_matrix: np.ndarray) -> list[float | None]:
    """The per-bar Sharpe of every column (None where undefined, as `per_bar_sharpe`)."""
    matrix = _returns_matrix(returns_matrix)
    sharpes = np.empty(matrix.shape[1])
    for start, columns in _column_groups(matrix):
        sharpes[start : start + columns.shape[1]] = _column_sharpes(columns)
    return [None if math.isnan(value) else value for value in sharpes.tolist()]


# --- PBO by CSCV -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockStatistics:
    """Per-block sums, sums of squares and counts of a T×N returns matrix split into S blocks.

    `sums` and `sums_of_squares` are S×N, `counts` has S entries (bars per block, the
    `numpy.array_split` sizes). Columns computed separately can be joined with `concat`.
    """

    sums: np.ndarray
    sums_of_squares: np.ndarray
    counts: np.ndarray

    @property
    def partitions(self) -> int:
        return len(self.counts)

    @property
    def n_trials(self) -> int:
        return self.sums.shape[1]

    @staticmethod
    def concat(parts: list[BlockStatistics]) -> BlockStatistics:
        """The statistics of the trials of every part side by side (same rows, same blocks)."""
        if not parts:
            raise ValueError("concat needs at least one BlockStatistics")
        counts = parts[0].counts
        if any(not np.array_equal(part.counts, counts) for part in parts):
            raise ValueError("block statistics to join must come from the same rows and partitions")
        return BlockStatistics(
            np.hstack([part.sums for part in parts]),
            np.hstack([part.sums_of_squares for part in parts]),
            counts,
        )


def _block_bounds(n_bars: int, partitions: int) -> np.ndarray:
    """Row bounds of the `numpy.array_split` blocks: block b is rows bounds[b]..bounds[b+1]−1."""
    sizes = [len(block) for block in np.array_split(np.arange(n_bars), partitions)]
    return np.cumsum([0, *sizes])


def _group_blocks(columns: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # One contiguous slice of each column per block, summed by numpy's pairwise summation.
    partitions = len(bounds) - 1
    sums = np.empty((partitions, columns.shape[1]))
    squares = np.empty_like(sums)
    for block in range(partitions):
        rows = columns[bounds[block] : bounds[block + 1]]
        sums[block] = rows.sum(axis=0)
        squares[block] = np.square(rows).sum(axis=0)
    return sums, squares


def block_statistics(
    returns_matrix: np.ndarray, partitions: int = DEFAULT_PARTITIONS
) -> BlockStatistics:
    """Split the rows with `numpy.array_split` into S contiguous blocks and sum each column."""
    matrix = _returns_matrix(returns_matrix)
    partitions = check_partitions(partitions, matrix.shape[0])
    bounds = _block_bounds(matrix.shape[0], partitions)
    sums = np.empty((partitions, matrix.shape[1]))
    squares = np.empty_like(sums)
    for start, columns in _column_groups(matrix):
        stop = start + columns.shape[1]
        sums[:, start:stop], squares[:, start:stop] = _group_blocks(columns, bounds)
    return BlockStatistics(sums, squares, np.diff(bounds))


def pbo_cscv(returns_matrix: np.ndarray, partitions: int = DEFAULT_PARTITIONS) -> dict:
    """PBO of the N trials (columns) of a T×N matrix of per-bar returns; see `pbo_from_blocks`."""
    return pbo_from_blocks(block_statistics(returns_matrix, partitions))


def pbo_from_blocks(blocks: BlockStatistics) -> dict:
    """PBO by CSCV from per-block statistics (SPEC §13.1).

    For every combination c of S/2 blocks (`itertools.combinations` order) the in-sample rows are
    the blocks in c, the out-of-sample rows the rest; n* = argmax of the in-sample Sharpe (first
    on ties); ω = average rank of n*'s out-of-sample Sharpe among all (1 = worst) / (N + 1);
    λ = ln(ω/(1−ω)). Combinations are evaluated in complementary pairs (the in-sample rows of one
    are the out-of-sample rows of the other) by a compiled loop over the trials that keeps only
    one pair's Sharpe ratios, so memory stays at a few × N; every statistic returned is over all
    combinations, whatever their order.

    Returns {"value": share of λ ≤ 0, "partitions", "combinations",
    "logit_histogram": {"edges": 21 bin edges on [−6, 6], "counts": 20 counts, λ clipped},
    "probability_of_loss": share with out-of-sample Sharpe of n* < 0,
    "performance_degradation": {"intercept": a, "slope": b} of the least-squares line
    R̄[n*] = a + b·R[n*] over the combinations (per-bar Sharpes; null when R[n*] is constant)}.
    """
    logits, best_in_sample, best_out_of_sample = _cscv(blocks)
    partitions = blocks.partitions
    counts, edges = np.histogram(
        np.clip(logits, *LOGIT_HISTOGRAM_RANGE),
        bins=LOGIT_HISTOGRAM_BINS,
        range=LOGIT_HISTOGRAM_RANGE,
    )
    return {
        "value": float(np.mean(logits <= 0.0)),
        "partitions": partitions,
        "combinations": len(logits),
        "logit_histogram": {"edges": np.round(edges, 10).tolist(), "counts": counts.tolist()},
        "probability_of_loss": float(np.mean(best_out_of_sample < 0.0)),
        "performance_degradation": least_squares_line(best_in_sample, best_out_of_sample),
    }


def cscv_points(blocks: BlockStatistics) -> dict[str, list[float]]:
    """Every CSCV combination's best in-sample trial n*: its in-sample Sharpe R[n*], its
    out-of-sample Sharpe R̄[n*] (per bar) and λ, as ``pbo_from_blocks`` evaluates them (the
    points behind its ``performance_degradation``, ``probability_of_loss`` and PBO)."""
    logits, best_in_sample, best_out_of_sample = _cscv(blocks)
    return {
        "in_sample": best_in_sample.tolist(),
        "out_of_sample": best_out_of_sample.tolist(),
        "logits": logits.tolist(),
    }


def _cscv(blocks: BlockStatistics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(λ, R[n*], R̄[n*]) for every combination (see ``pbo_from_blocks``)."""
    from metrics._cscv import cscv_pairs

    n_trials = blocks.n_trials
    if n_trials < 2:
        raise ValueError(f"PBO needs at least 2 trials, got {n_trials}")
    partitions = blocks.partitions
    # Combinations come in complementary pairs: the half that holds block 0 is listed, and each
    # pair's Sharpe ratios serve both of its combinations. Positions [0, P) of the results hold
    # the combinations with block 0, [P, 2P) their complements.
    halves = np.array(
        [c for c in itertools.combinations(range(partitions), partitions // 2) if c[0] == 0],
        dtype=np.int64,
    )
    return cscv_pairs(
        halves,
        np.ascontiguousarray(blocks.sums, dtype=np.float64),
        np.ascontiguousarray(blocks.sums_of_squares, dtype=np.float64),
        np.asarray(blocks.counts, dtype=np.float64),
        FLAT_RELATIVE_DEVIATION,
    )


def warm_kernels() -> None:
    """Load (or compile, once, into numba's on-disk cache) the CSCV loop before a process needs
    it: a PBO of 2 trials × 4 blocks."""
    blocks = np.arange(8.0).reshape(4, 2) / 100.0
    pbo_from_blocks(BlockStatistics(blocks, blocks**2 + 0.01, np.full(4, 10)))


def least_squares_line(x: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    """{"intercept": a, "slope": b} minimising Σ(y − a − b·x)²; both None when x is constant."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    x_dev = x - x.mean()
    spread = float(np.dot(x_dev, x_dev))
    if not spread > 0:
        return {"intercept": None, "slope": None}
    slope = float(np.dot(x_dev, y - y.mean())) / spread
    return {"intercept": float(y.mean() - slope * x.mean()), "slope": slope}


# --- SPA reality check -------------------------------------------------------------------------


@dataclass(frozen=True)
class SpaResamples:
    """The stationary-bootstrap resamples of an SPA test, drawn once and applied to any group of
    trials: arch's `StationaryBootstrap(block_size, ·, seed=seed)` indices, `reps` of them, kept
    per chunk of resamples as the linear map from a column to its resampled sums (see
    `_resampling_operator`)."""

    n_bars: int
    block_size: int
    reps: int
    seed: int
    operators: tuple

    def resampled_sums(self, demeaned: np.ndarray):
        """Σ_t demeaned[index_{r,t}] for every resample r, chunk by chunk (size × columns)."""
        prefix = None
        for kind, operator in self.operators:
            if kind == "dense":
                yield operator @ demeaned
                continue
            if prefix is None:
                prefix = np.zeros((self.n_bars + 1, demeaned.shape[1]))
                np.cumsum(demeaned, axis=0, out=prefix[1:])
            yield np.asarray(operator @ prefix)


def spa_resamples(n_bars: int, block_size: int, reps: int, seed: int) -> SpaResamples:
    """The resamples of `spa_reality_check(…, reps, block_size, seed)` on `n_bars` bars. Drawing
    them takes about as long as applying them to a thousand trials, so the last few are kept."""
    return _spa_resamples(int(n_bars), int(block_size), int(reps), int(seed))


@functools.lru_cache(maxsize=2)
def _spa_resamples(n_bars: int, block_size: int, reps: int, seed: int) -> SpaResamples:
    sampler = StationaryBootstrap(block_size, np.zeros(n_bars), seed=seed)
    chunk = max(1, min(reps, 4_000_000 // n_bars))
    operators = []
    for done in range(0, reps, chunk):
        size = min(chunk, reps - done)
        indices = np.vstack([sampler.update_indices() for _ in range(size)])
        operators.append(_resampling_operator(indices, n_bars))
    return SpaResamples(n_bars, block_size, reps, seed, tuple(operators))


def _resampling_operator(indices: np.ndarray, n_bars: int) -> tuple[str, object]:
    """What turns a column into its resampled sums Σ_t values[indices[r, t]] (row r of `indices`).

    A stationary-bootstrap resample is a few runs of consecutive bars (about T/B), so each
    resample's sum is Σ over its runs of prefix[last + 1] − prefix[first] (prefix the cumulative
    sums with a leading 0): ("sparse", a matrix with ~2T/B entries per resample, applied to the
    prefix sums) instead of T·N work. With short blocks (many runs) the bar counts of each
    resample ("dense", applied to the values themselves) are cheaper.
    """
    size = indices.shape[0]
    flat = indices.ravel()
    starts = np.empty(flat.shape, dtype=bool)
    starts[0] = True
    np.not_equal(flat[1:], flat[:-1] + 1, out=starts[1:])
    starts[::n_bars] = True  # every resample starts a run (wrapping from T−1 to 0 does too)
    first = np.flatnonzero(starts)
    if len(first) * 2 > flat.size // 4:
        counts = np.zeros((size, n_bars))
        for row in range(size):
            counts[row] = np.bincount(indices[row], minlength=n_bars)
        return "dense", counts
    last = np.append(first[1:], flat.size) - 1
    rows = first // n_bars
    incidence = sparse.csr_matrix(
        (
            np.concatenate([np.ones(len(first)), -np.ones(len(first))]),
            (np.concatenate([rows, rows]), np.concatenate([flat[last] + 1, flat[first]])),
        ),
        shape=(size, n_bars + 1),
    )
    return "sparse", incidence


@dataclass(frozen=True)
class SpaMaxima:
    """What the SPA p-values need of a group of trials: the largest mean loss differential
    (benchmark loss − trial loss) and, per resample, the largest recentred resampled mean for the
    lower, consistent and upper p-values (`reps` × 3). Groups join by their maxima."""

    observed: float
    resampled: np.ndarray
    block_size: int
    seed: int

    @staticmethod
    def concat(parts: list[SpaMaxima]) -> SpaMaxima:
        if not parts:
            raise ValueError("concat needs at least one SpaMaxima")
        first = parts[0]
        if any(
            (part.block_size, part.seed, part.resampled.shape)
            != (first.block_size, first.seed, first.resampled.shape)
            for part in parts
        ):
            raise ValueError("SPA maxima to join must come from the same resamples")
        return SpaMaxima(
            max(part.observed for part in parts),
            np.maximum.reduce([part.resampled for part in parts]),
            first.block_size,
            first.seed,
        )

    def pvalues(self) -> dict[str, float | int]:
        reps = self.resampled.shape[0]
        lower, consistent, upper = (
            np.count_nonzero(self.resampled > self.observed, axis=0) / reps
        ).tolist()
        return {
            "pvalue_lower": lower,
            "pvalue_consistent": consistent,
            "pvalue_upper": upper,
            "reps": reps,
            "block_size": self.block_size,
            "seed": self.seed,
        }


def spa_reality_check(
    benchmark_returns: np.ndarray,
    returns_matrix: np.ndarray,
    *,
    reps: int = DEFAULT_RESAMPLES,
    block_size: int | None = None,
    seed: int = DEFAULT_SEED,
) -> dict[str, float | int]:
    """Hansen's SPA test that no trial beats the benchmark, as `arch.bootstrap.SPA` computes it.

    Exactly `SPA(−benchmark, −returns_matrix, block_size=B, reps=R, bootstrap="stationary",
    studentize=True, nested=False, seed=seed)`: the same stationary-bootstrap indices (drawn by
    arch's `StationaryBootstrap` from the same seed), the same recentring and the same
    asymptotic variance. arch's own loop averages a T×N copy per resample and sums the variance's
    T lags one at a time, which takes minutes for thousands of trials; here a resample's sums are
    taken from prefix sums over its runs of consecutive bars (a sparse product, about 2T/B terms
    per resample) and the variance's lag-weighted autocovariances from one real FFT per column,
    a group of columns at a time. Defaults: R = 1000, B = round(√T), seed 0.
    """
    matrix = _returns_matrix(returns_matrix)
    n_bars = matrix.shape[0]
    benchmark = _spa_benchmark(benchmark_returns, n_bars)
    reps = check_resamples(reps, "reps")
    resamples = spa_resamples(n_bars, _spa_block_size(block_size, n_bars), reps, check_seed(seed))
    return SpaMaxima.concat(
        [spa_maxima(columns, benchmark, resamples) for _, columns in _column_groups(matrix)]
    ).pvalues()


def _spa_benchmark(benchmark_returns: np.ndarray, n_bars: int) -> np.ndarray:
    benchmark = np.asarray(benchmark_returns, dtype=float).ravel()
    if benchmark.shape[0] != n_bars:
        raise ValueError(
            f"benchmark_returns has {benchmark.shape[0]} bars, the returns matrix {n_bars}"
        )
    if not np.isfinite(benchmark).all():
        raise ValueError("benchmark_returns must be finite")
    return benchmark


def _spa_block_size(block_size: int | None, n_bars: int) -> int:
    if block_size is None:
        return round(math.sqrt(n_bars))
    return check_block_length(block_size, "block_size")


def spa_maxima(columns: np.ndarray, benchmark: np.ndarray, resamples: SpaResamples) -> SpaMaxima:
    """The SPA maxima of a group of trials (the columns of a column-major bars × n array)."""
    n_bars = columns.shape[0]
    # Losses are −returns, so benchmark loss − model loss = model return − benchmark return.
    demeaned = columns - benchmark[:, None]
    mean_diff = demeaned.mean(axis=0)
    demeaned -= mean_diff
    variances = _spa_asymptotic_variance(demeaned, resamples.block_size)
    threshold = -np.sqrt((variances / n_bars) * 2 * np.log(np.log(n_bars)))
    # arch compares max(mean* − centre) with max(mean), mean* = mean + (resampled mean of the
    # demeaned differences): mean − centre is min(mean, 0) for the lower p-value, 0 where the
    # column is valid (else mean) for the consistent one and 0 for the upper one.
    shifts = (
        np.minimum(mean_diff, 0.0),
        np.where(mean_diff >= threshold, 0.0, mean_diff),
        np.zeros_like(mean_diff),
    )
    resampled = np.empty((resamples.reps, 3))
    done = 0
    for sums in resamples.resampled_sums(demeaned):
        means = sums / n_bars
        for column, shift in enumerate(shifts):
            resampled[done : done + len(means), column] = (means + shift).max(axis=1)
        done += len(means)
    return SpaMaxima(float(np.max(mean_diff)), resampled, resamples.block_size, resamples.seed)


def _spa_asymptotic_variance(demeaned: np.ndarray, block_size: int) -> np.ndarray:
    # Politis & Romano's stationary-bootstrap variance of √T·mean, as arch's SPA (non-nested):
    # Σ_s d_s²/T + 2·Σ_{i≥1} κ_i·Σ_s d_s·d_{s+i}/T, κ_i = (1 − i/T)(1−p)^i + (i/T)(1−p)^(T−i).
    # The lag-weighted sum of autocovariances is taken in the frequency domain: with F the
    # zero-padded DFT of a column (length n ≥ 2T − 1, no wrap-around) and W that of the lag
    # weights, Σ_i w_i·acov_i = (1/n)·Σ_k |F_k|²·Re(W_k), half of it from the real transforms.
    n_bars = demeaned.shape[0]
    size, frequency_weights = _variance_weights(n_bars, block_size)
    variances = np.empty(demeaned.shape[1])
    step = max(1, 4_000_000 // size)
    for start in range(0, demeaned.shape[1], step):
        spectrum = scipy_fft.rfft(demeaned[:, start : start + step], n=size, axis=0)
        # Column by column in the same order whatever the group: a column-major power spectrum
        # weighted and summed along each column.
        power = np.asfortranarray(np.square(spectrum.real))
        power += np.square(spectrum.imag)
        del spectrum
        power *= frequency_weights[:, None]
        variances[start : start + step] = power.sum(axis=0)
    return variances


@functools.lru_cache(maxsize=4)
def _variance_weights(n_bars: int, block_size: int) -> tuple[int, np.ndarray]:
    p = 1.0 / block_size
    lags = np.arange(n_bars)
    kappa = (1.0 - lags / n_bars) * (1.0 - p) ** lags + (lags / n_bars) * (1.0 - p) ** (
        n_bars - lags
    )
    lag_weights = 2.0 * kappa
    lag_weights[0] = 1.0
    size = scipy_fft.next_fast_len(2 * n_bars - 1, real=True)
    frequency_weights = scipy_fft.rfft(lag_weights, n=size).real
    # The half spectrum stands for both halves, except the zero (and the Nyquist) frequency.
    frequency_weights[1:] *= 2.0
    if size % 2 == 0:
        frequency_weights[-1] /= 2.0
    frequency_weights /= size * n_bars
    frequency_weights.setflags(write=False)
    return size, frequency_weights


# --- the overfitting block of a search ---------------------------------------------------------


@dataclass(frozen=True)
class TrialStatistics:
    """Everything the overfitting block needs of a group of trials besides the chosen trial's own
    returns: block statistics for CSCV, per-bar Sharpes for DSR (NaN where undefined) and the SPA
    maxima. Computed column by column, so groups computed apart (by separate workers, over
    separate column ranges of the same bars) and joined in column order with `concat` give
    exactly the statistics of the whole matrix."""

    blocks: BlockStatistics
    sharpes: np.ndarray
    spa: SpaMaxima

    @property
    def n_trials(self) -> int:
        return len(self.sharpes)

    @staticmethod
    def concat(parts: list[TrialStatistics]) -> TrialStatistics:
        if not parts:
            raise ValueError("concat needs at least one TrialStatistics")
        return TrialStatistics(
            BlockStatistics.concat([part.blocks for part in parts]),
            np.concatenate([part.sharpes for part in parts]),
            SpaMaxima.concat([part.spa for part in parts]),
        )


def trial_statistics(
    returns_matrix: np.ndarray,
    benchmark_returns: np.ndarray,
    *,
    partitions: int = DEFAULT_PARTITIONS,
    spa_reps: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> TrialStatistics:
    """The `TrialStatistics` of the trials (columns) of a T×N returns matrix, against the
    benchmark's returns on the same T bars (SPA with B = round(√T))."""
    matrix = _returns_matrix(returns_matrix)
    n_bars, n_trials = matrix.shape
    partitions = check_partitions(partitions, n_bars)
    benchmark = _spa_benchmark(benchmark_returns, n_bars)
    spa_reps = check_resamples(spa_reps, "spa_reps")
    resamples = spa_resamples(n_bars, _spa_block_size(None, n_bars), spa_reps, check_seed(seed))
    bounds = _block_bounds(n_bars, partitions)
    sums = np.empty((partitions, n_trials))
    squares = np.empty_like(sums)
    sharpes = np.empty(n_trials)
    maxima = []
    for start, columns in _column_groups(matrix):
        stop = start + columns.shape[1]
        sums[:, start:stop], squares[:, start:stop] = _group_blocks(columns, bounds)
        sharpes[start:stop] = _column_sharpes(columns)
        maxima.append(spa_maxima(columns, benchmark, resamples))
    return TrialStatistics(
        BlockStatistics(sums, squares, np.diff(bounds)), sharpes, SpaMaxima.concat(maxima)
    )


def overfitting_from_statistics(
    statistics: TrialStatistics, best_returns: np.ndarray, *, best_index: int, benchmark: str
) -> dict:
    """The §13.2 `overfitting` block from the trials' statistics and the chosen trial's returns
    (column `best_index`); see `overfitting_report`."""
    n_trials = statistics.n_trials
    if not 0 <= best_index < n_trials:
        raise ValueError(f"best_index must be between 0 and {n_trials - 1}, got {best_index}")
    deflated = deflated_sharpe_ratio(best_returns, statistics.sharpes)
    return {
        "n_trials": n_trials,
        "best": best_index,
        "psr": deflated["psr"],
        "dsr": deflated["dsr"],
        "sr0": deflated["sr0"],
        "pbo": pbo_from_blocks(statistics.blocks) if n_trials >= 2 else None,
        "spa": {"benchmark": benchmark, **statistics.spa.pvalues()},
    }


def overfitting_report(
    returns_matrix: np.ndarray,
    benchmark_returns: np.ndarray,
    *,
    best_index: int,
    benchmark: str,
    partitions: int = DEFAULT_PARTITIONS,
    spa_reps: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict:
    """The §13.2 `overfitting` block of N trials (columns), the chosen one at `best_index`.

    {n_trials, best, psr, dsr, sr0, pbo: {...}, spa: {benchmark, pvalue_*, reps, block_size,
    seed}}. `pbo` is None with a single trial (CSCV compares trials). The matrix is read a
    group of columns at a time and never copied whole.
    """
    matrix = _returns_matrix(returns_matrix)
    n_trials = matrix.shape[1]
    if not 0 <= best_index < n_trials:
        raise ValueError(f"best_index must be between 0 and {n_trials - 1}, got {best_index}")
    statistics = trial_statistics(
        matrix, benchmark_returns, partitions=partitions, spa_reps=spa_reps, seed=seed
    )
    return overfitting_from_statistics(
        statistics, matrix[:, best_index], best_index=best_index, benchmark=benchmark
    )


# --- stationary-bootstrap confidence intervals ------------------------------------------------


def bootstrap_confidence_intervals(
    returns: pd.Series | np.ndarray,
    *,
    initial_capital: float,
    bars_per_year: float,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    block_length: float | None = None,
    seed: int = DEFAULT_SEED,
    calendar_days: float | None = None,
    risk_free_rate: float = 0.0,
) -> dict:
    """Percentile confidence intervals of a run's headline metrics by the stationary bootstrap.

    `arch.bootstrap.StationaryBootstrap(B, r, seed=seed).conf_int(f, reps=R, method="percentile",
    size=confidence)`, f = the §5 CAGR, annualised Sharpe, Sortino, annualised volatility and
    max drawdown of a resampled return path taken as an equity curve from C over the run's own
    calendar span (resampling reorders bars, it does not move the dates). `returns` is the §5
    per-bar series; a pandas Series with the bar dates gives the span, otherwise pass
    `calendar_days`. B defaults to `arch.bootstrap.optimal_block_length(r)["stationary"]`, at least
    1. `probability_positive` is the share of resampled Sharpe ratios above 0.

    Returns {"block_length", "resamples", "confidence", "seed", "metrics": {name: {"point",
    "lower", "upper"}}, "probability_positive"}; a metric undefined on the run or on any resample
    is None.
    """
    resamples = check_resamples(resamples)
    confidence = check_confidence(confidence)
    seed = check_seed(seed)
    if calendar_days is None:
        if not isinstance(returns, pd.Series) or not isinstance(returns.index, pd.DatetimeIndex):
            raise ValueError("calendar_days is required unless returns is a Series of bar dates")
        calendar_days = (returns.index[-1] - returns.index[0]).total_seconds() / 86_400
    values = _finite_vector(returns, "returns")
    if values is None or len(values) < 2:
        raise ValueError("returns must hold at least 2 finite per-bar returns")
    if block_length is None:
        block_length = max(1.0, float(optimal_block_length(values)["stationary"].iloc[0]))
    elif isinstance(block_length, bool) or not block_length >= 1:
        raise ValueError(f"block_length must be a positive integer, got {block_length}")

    statistic = bootstrap_statistic(
        initial_capital=initial_capital,
        bars_per_year=bars_per_year,
        calendar_days=calendar_days,
        risk_free_rate=risk_free_rate,
    )
    # What `conf_int(f, reps=R, method="percentile", size=confidence)` computes, with f applied
    # to a block of resamples at once (row by row the same operations, so the same numbers; the
    # tests compare with conf_int itself): f one resample at a time costs ~1 ms in Python calls.
    sampler = StationaryBootstrap(block_length, values, seed=seed)
    resampled = np.empty((resamples, len(BOOTSTRAP_METRICS)))
    block: list[np.ndarray] = []
    filled = 0
    for (sample,), _ in sampler.bootstrap(resamples):
        block.append(sample)
        if len(block) == _BOOTSTRAP_BLOCK or filled + len(block) == resamples:
            resampled[filled : filled + len(block)] = statistic(np.vstack(block))
            filled += len(block)
            block = []
    alpha = (1.0 - confidence) / 2
    bounds = np.array(
        [
            np.percentile(resampled[:, column], [100 * alpha, 100 * (1.0 - alpha)])
            for column in range(len(BOOTSTRAP_METRICS))
        ]
    ).T
    point = statistic(values[None, :])[0]
    sharpes = resampled[:, 1]
    return {
        "block_length": block_length,
        "resamples": resamples,
        "confidence": confidence,
        "seed": seed,
        "metrics": {
            name: {
                "point": _number(point[column]),
                "lower": _number(bounds[0, column]),
                "upper": _number(bounds[1, column]),
            }
            for column, name in enumerate(BOOTSTRAP_METRICS)
        },
        "probability_positive": float(np.mean(sharpes > 0)),
    }


def bootstrap_statistic(
    *,
    initial_capital: float,
    bars_per_year: float,
    calendar_days: float,
    risk_free_rate: float = 0.0,
) -> Callable[[np.ndarray], np.ndarray]:
    """f(R) = [CAGR, Sharpe, Sortino, volatility, max drawdown] of each row of R (k × n per-bar
    returns) compounded from `initial_capital` over `calendar_days`: the §5 definitions of
    metrics.calculations, row by row with the same operations; NaN where undefined."""
    if not initial_capital > 0:
        raise ValueError(f"initial_capital must be positive, got {initial_capital}")
    if not bars_per_year > 0:
        raise ValueError(f"bars_per_year must be positive, got {bars_per_year}")
    capital = float(initial_capital)
    rf_per_bar = per_period_risk_free(risk_free_rate, bars_per_year)
    root_p = math.sqrt(bars_per_year)

    def statistic(returns: np.ndarray) -> np.ndarray:
        n_rows, n_bars = returns.shape
        result = np.full((n_rows, len(BOOTSTRAP_METRICS)), np.nan)
        equity = capital * np.cumprod(1.0 + returns, axis=1)
        growth = equity[:, -1] / capital
        if calendar_days >= 1:
            exponent = DAYS_PER_YEAR / calendar_days
            result[:, 0] = [
                value**exponent - 1.0 if math.isfinite(value) and value >= 0 else math.nan
                for value in growth.tolist()
            ]
        peaks = np.maximum.accumulate(np.hstack([np.full((n_rows, 1), capital), equity]), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            result[:, 4] = np.minimum((equity / peaks[:, 1:] - 1.0).min(axis=1), 0.0)
        if n_bars < 2:
            return result
        excess = returns - rf_per_bar
        with np.errstate(divide="ignore", invalid="ignore"):
            flat = excess.max(axis=1) - excess.min(axis=1) <= 1e-12 * np.abs(excess).max(axis=1)
            result[:, 1] = np.where(
                flat, np.nan, excess.mean(axis=1) / np.std(excess, axis=1, ddof=1) * root_p
            )
            downside = np.sqrt(np.mean(np.square(np.minimum(excess, 0.0)), axis=1))
            result[:, 2] = np.where(
                downside == 0,
                np.nan,
                excess.mean(axis=1) * bars_per_year / (downside * root_p),
            )
            result[:, 3] = np.std(returns, axis=1, ddof=1) * root_p
        return result

    return statistic


# --- cost sensitivity --------------------------------------------------------------------------

COST_MULTIPLIERS = (0, 1, 2, 5)
# Per-side costs tried when a run has none of its own, in basis points each.
COST_LEVELS_BPS = (0, 5, 10, 25)


def cost_sensitivity_levels(commission: float, slippage: float) -> list[dict[str, float | None]]:
    """The (commission, slippage) pairs of a run's cost-sensitivity rows, as fractions.

    The run's own costs × 0, 1, 2 and 5 (`multiplier` set), or when both are 0 the same value of
    0, 5, 10 and 25 bps per side for each (`multiplier` None).
    """
    if commission < 0 or slippage < 0:
        raise ValueError("commission and slippage must not be negative")
    if commission == 0 and slippage == 0:
        return [
            {"multiplier": None, "commission": bps / 10_000, "slippage": bps / 10_000}
            for bps in COST_LEVELS_BPS
        ]
    return [
        {"multiplier": k, "commission": commission * k, "slippage": slippage * k}
        for k in COST_MULTIPLIERS
    ]


def breakeven_cost_bps(cagr_at_bps: Callable[[float], float | None]) -> float | None:
    """The per-side cost x (commission = slippage = x bps) at which CAGR reaches 0.

    Bisection on [0, 500] bps until the bracket is at most 0.1 bps wide (13 evaluations after
    the two ends); the answer is the bracket's midpoint, rounded to 0.01 bps. None when CAGR ≤ 0
    at 0 bps or still > 0 at 500 bps. A CAGR of None (the run lost everything) counts as ≤ 0.
    """
    low, high = BREAKEVEN_SEARCH_BPS

    def profitable(bps: float) -> bool:
        cagr = cagr_at_bps(bps)
        return cagr is not None and math.isfinite(cagr) and cagr > 0

    if not profitable(low) or profitable(high):
        return None
    while high - low > BREAKEVEN_TOLERANCE_BPS:
        middle = (low + high) / 2
        if profitable(middle):
            low = middle
        else:
            high = middle
    return round((low + high) / 2, 2)


# --- helpers -----------------------------------------------------------------------------------


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _finite_vector(returns: np.ndarray, name: str) -> np.ndarray | None:
    values = np.asarray(returns, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {values.shape}")
    if not np.isfinite(values).all():
        return None
    return values


def _returns_matrix(returns_matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(returns_matrix, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(
            f"returns_matrix must be two-dimensional (bars × trials), got shape {matrix.shape}"
        )
    if matrix.shape[0] < 2 or matrix.shape[1] < 1:
        raise ValueError(
            f"returns_matrix needs at least 2 bars and 1 trial, got shape {matrix.shape}"
        )
    # Finite values are checked a group of columns at a time (`_column_groups`), without a
    # T×N temporary.
    return matrix
