"""The research statistics (SPEC §13.1) against independent computations.

PSR and DSR are recomputed here from the published formulas (Bailey & López de Prado 2012, 2014);
PBO by a brute-force CSCV over the full matrix (rows gathered per combination, Sharpe by
numpy, ranks by scipy.stats.rankdata); the SPA p-values by `arch.bootstrap.SPA` itself.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from arch.bootstrap import SPA, StationaryBootstrap, optimal_block_length
from scipy import stats

from metrics.calculations import compute_metrics
from metrics.research import (
    RESEARCH_SPEC_VERSION,
    BlockStatistics,
    SpaMaxima,
    TrialStatistics,
    block_statistics,
    bootstrap_confidence_intervals,
    breakeven_cost_bps,
    check_block_length,
    check_confidence,
    check_partitions,
    check_resamples,
    check_seed,
    cost_sensitivity_levels,
    deflated_sharpe_ratio,
    overfitting_from_statistics,
    overfitting_report,
    pbo_cscv,
    pbo_from_blocks,
    per_bar_sharpe,
    probabilistic_sharpe_ratio,
    spa_maxima,
    spa_reality_check,
    spa_resamples,
    trial_sharpes,
    trial_statistics,
)

TOLERANCE = 1e-9


def noise_matrix(n_bars: int, n_trials: int, seed: int, scale: float = 0.01) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, (n_bars, n_trials))


# --- independent references ----------------------------------------------------------------


def reference_psr(returns: np.ndarray, benchmark_sharpe: float) -> float:
    n = len(returns)
    sharpe = np.mean(returns) / np.std(returns, ddof=1)
    skew = stats.skew(returns)
    kurt = stats.kurtosis(returns, fisher=False)
    z = (
        (sharpe - benchmark_sharpe)
        * math.sqrt(n - 1)
        / math.sqrt(1 - skew * sharpe + (kurt - 1) / 4 * sharpe**2)
    )
    return stats.norm.cdf(z)


def reference_sr0(sharpes: np.ndarray) -> float:
    n = len(sharpes)
    gamma = 0.5772156649
    return math.sqrt(np.var(sharpes, ddof=1)) * (
        (1 - gamma) * stats.norm.ppf(1 - 1 / n) + gamma * stats.norm.ppf(1 - 1 / (n * math.e))
    )


def reference_sharpe(rows: np.ndarray) -> np.ndarray:
    mean = rows.mean(axis=0)
    deviation = rows.std(axis=0, ddof=1)
    flat = deviation <= 1e-6 * np.abs(mean)
    return np.where(flat, 0.0, mean / np.where(flat, 1.0, deviation))


def brute_force_cscv(matrix: np.ndarray, partitions: int) -> dict:
    blocks = np.array_split(np.arange(matrix.shape[0]), partitions)
    logits, chosen_is, chosen_oos = [], [], []
    for combination in itertools.combinations(range(partitions), partitions // 2):
        in_rows = np.concatenate([blocks[i] for i in combination])
        out_rows = np.concatenate([blocks[i] for i in range(partitions) if i not in combination])
        in_sample = reference_sharpe(matrix[in_rows])
        out_of_sample = reference_sharpe(matrix[out_rows])
        best = int(np.argmax(in_sample))
        omega = stats.rankdata(out_of_sample, method="average")[best] / (matrix.shape[1] + 1)
        logits.append(math.log(omega / (1 - omega)))
        chosen_is.append(in_sample[best])
        chosen_oos.append(out_of_sample[best])
    logits = np.array(logits)
    slope, intercept = np.polyfit(chosen_is, chosen_oos, 1)
    return {
        "value": float(np.mean(logits <= 0)),
        "combinations": len(logits),
        "counts": np.histogram(np.clip(logits, -6, 6), bins=20, range=(-6, 6))[0].tolist(),
        "probability_of_loss": float(np.mean(np.array(chosen_oos) < 0)),
        "slope": slope,
        "intercept": intercept,
    }


def arch_spa(benchmark: np.ndarray, matrix: np.ndarray, reps: int, block_size: int, seed: int):
    spa = SPA(
        -benchmark,
        -matrix,
        block_size=block_size,
        reps=reps,
        bootstrap="stationary",
        studentize=True,
        nested=False,
        seed=seed,
    )
    spa.compute()
    return spa.pvalues


# --- PSR / DSR -------------------------------------------------------------------------------


def test_version_is_declared():
    assert RESEARCH_SPEC_VERSION == "1.0"


def test_per_bar_sharpe_is_mean_over_sample_deviation():
    returns = np.random.default_rng(0).normal(0.001, 0.01, 500)
    assert per_bar_sharpe(returns) == pytest.approx(
        np.mean(returns) / np.std(returns, ddof=1), abs=TOLERANCE
    )
    assert per_bar_sharpe(np.full(10, 0.001)) is None
    assert per_bar_sharpe(np.array([0.01])) is None
    assert per_bar_sharpe(np.array([0.01, np.nan, 0.02])) is None


@pytest.mark.parametrize("benchmark_sharpe", [0.0, 0.02, -0.05])
def test_psr_matches_the_published_formula(benchmark_sharpe):
    # Skewed, fat-tailed returns so that γ3 and γ4 matter.
    rng = np.random.default_rng(7)
    returns = 0.0004 + 0.01 * rng.standard_t(4, 2000) + 0.004 * rng.exponential(1, 2000) - 0.004
    expected = reference_psr(returns, benchmark_sharpe)
    assert probabilistic_sharpe_ratio(returns, benchmark_sharpe) == pytest.approx(
        expected, abs=TOLERANCE
    )


def test_trial_sharpes_are_each_columns_sharpe():
    matrix = noise_matrix(400, 6, seed=2) + 0.0005
    matrix[:, 3] = 0.0
    expected = [per_bar_sharpe(matrix[:, column]) for column in range(6)]
    assert trial_sharpes(matrix)[3] is None and expected[3] is None
    assert [s for s in trial_sharpes(matrix) if s is not None] == pytest.approx(
        [s for s in expected if s is not None], abs=TOLERANCE
    )


def test_psr_is_none_without_a_sharpe_ratio():
    assert probabilistic_sharpe_ratio(np.zeros(50)) is None


def test_dsr_matches_the_published_formula():
    matrix = noise_matrix(1500, 30, seed=3) + np.linspace(0, 0.0008, 30)
    sharpes = matrix.mean(axis=0) / matrix.std(axis=0, ddof=1)
    best = int(np.argmax(sharpes))
    result = deflated_sharpe_ratio(matrix[:, best], sharpes)
    sr0 = reference_sr0(sharpes)
    assert result["n_trials"] == 30
    assert result["sr0"] == pytest.approx(sr0, abs=TOLERANCE)
    assert result["dsr"] == pytest.approx(reference_psr(matrix[:, best], sr0), abs=TOLERANCE)
    assert result["psr"] == pytest.approx(reference_psr(matrix[:, best], 0.0), abs=TOLERANCE)


def test_dsr_counts_only_trials_with_a_sharpe_and_one_trial_is_psr():
    returns = noise_matrix(300, 1, seed=4)[:, 0] + 0.001
    single = deflated_sharpe_ratio(returns, [per_bar_sharpe(returns), None, float("nan")])
    assert single["n_trials"] == 1
    assert single["sr0"] == 0.0
    assert (
        single["dsr"] == single["psr"] == pytest.approx(reference_psr(returns, 0.0), abs=TOLERANCE)
    )
    with pytest.raises(
        ValueError, match="trial_sharpes must hold at least one finite Sharpe ratio"
    ):
        deflated_sharpe_ratio(returns, [None])


# --- PBO -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_bars", "n_trials", "partitions"), [(400, 12, 8), (437, 7, 10), (240, 30, 4)]
)
def test_pbo_equals_brute_force_cscv(n_bars, n_trials, partitions):
    # Trials with a little drift each, a duplicated column (exact ties) and a column that is
    # flat in places (Sharpe 0 there), so ties and the flat rule are exercised.
    matrix = noise_matrix(n_bars, n_trials, seed=n_trials) + np.linspace(-0.0005, 0.0008, n_trials)
    matrix[:, 1] = matrix[:, 0]
    matrix[: n_bars // 2, 2] = 0.0
    expected = brute_force_cscv(matrix, partitions)
    result = pbo_cscv(matrix, partitions)
    assert result["value"] == expected["value"]
    assert result["partitions"] == partitions
    assert (
        result["combinations"] == expected["combinations"] == math.comb(partitions, partitions // 2)
    )
    assert result["logit_histogram"]["counts"] == expected["counts"]
    assert result["logit_histogram"]["edges"] == pytest.approx(
        np.linspace(-6, 6, 21).tolist(), abs=1e-12
    )
    assert result["probability_of_loss"] == expected["probability_of_loss"]
    line = result["performance_degradation"]
    assert line["slope"] == pytest.approx(expected["slope"], abs=TOLERANCE)
    assert line["intercept"] == pytest.approx(expected["intercept"], abs=TOLERANCE)


def test_pbo_from_block_statistics_computed_in_column_chunks_is_the_same():
    matrix = noise_matrix(500, 25, seed=11)
    whole = pbo_cscv(matrix, 12)
    parts = [block_statistics(matrix[:, start : start + 7], 12) for start in range(0, 25, 7)]
    assert pbo_from_blocks(BlockStatistics.concat(parts)) == whole


def test_pbo_of_pure_noise_is_near_one_half():
    result = pbo_cscv(noise_matrix(2000, 100, seed=21), 16)
    assert 0.3 < result["value"] < 0.7


def test_planted_strong_strategy_has_low_pbo_and_high_dsr():
    matrix = noise_matrix(1000, 100, seed=22)
    matrix[:, 37] += 0.003  # per-bar Sharpe ≈ 0.3 where the others have 0
    report = overfitting_report(
        matrix, noise_matrix(1000, 1, seed=23)[:, 0], best_index=37, benchmark="SPY", spa_reps=200
    )
    assert report["pbo"]["value"] < 0.05
    assert report["dsr"] > 0.95
    assert report["n_trials"] == 100
    assert report["best"] == 37
    assert report["spa"]["benchmark"] == "SPY"
    assert report["spa"]["pvalue_consistent"] < 0.05


def test_pbo_needs_two_trials():
    with pytest.raises(ValueError, match="PBO needs at least 2 trials, got 1"):
        pbo_cscv(noise_matrix(200, 1, seed=1), 4)


# --- SPA -------------------------------------------------------------------------------------


# B = 26 and 60 take the sparse path over runs of bars, B = 5 and 1 the dense one.
@pytest.mark.parametrize(("seed", "block_size"), [(0, None), (3, 60), (42, 5), (7, 1)])
def test_spa_equals_arch(seed, block_size):
    rng = np.random.default_rng(seed + 100)
    n_bars = 700
    matrix = rng.normal(0.0002, 0.01, (n_bars, 25)) + np.linspace(0, 0.0006, 25)
    benchmark = rng.normal(0.0003, 0.012, n_bars)
    result = spa_reality_check(benchmark, matrix, reps=400, block_size=block_size, seed=seed)
    expected_block = round(math.sqrt(n_bars)) if block_size is None else block_size
    expected = arch_spa(benchmark, matrix, 400, expected_block, seed)
    assert result == {
        "pvalue_lower": expected["lower"],
        "pvalue_consistent": expected["consistent"],
        "pvalue_upper": expected["upper"],
        "reps": 400,
        "block_size": expected_block,
        "seed": seed,
    }


def test_spa_same_inputs_same_answer():
    matrix = noise_matrix(300, 5, seed=5)
    benchmark = noise_matrix(300, 1, seed=6)[:, 0]
    assert spa_reality_check(benchmark, matrix, reps=50, seed=9) == spa_reality_check(
        benchmark, matrix, reps=50, seed=9
    )


def test_spa_rejects_mismatched_benchmark():
    with pytest.raises(ValueError, match="benchmark_returns has 299 bars, the returns matrix 300"):
        spa_reality_check(np.zeros(299), noise_matrix(300, 3, seed=1))


# --- trials in groups ------------------------------------------------------------------------


def group_matrix() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(31)
    matrix = rng.normal(0.0002, 0.01, (613, 41)) + np.linspace(-0.0004, 0.0007, 41)
    matrix[:, 5] = matrix[:, 4]  # exact ties
    matrix[:300, 9] = 0.0  # flat in places
    return matrix, rng.normal(0.0003, 0.011, 613)


def assert_same_statistics(left: TrialStatistics, right: TrialStatistics) -> None:
    np.testing.assert_array_equal(left.blocks.sums, right.blocks.sums)
    np.testing.assert_array_equal(left.blocks.sums_of_squares, right.blocks.sums_of_squares)
    np.testing.assert_array_equal(left.blocks.counts, right.blocks.counts)
    np.testing.assert_array_equal(left.sharpes, right.sharpes)
    assert left.spa.observed == right.spa.observed
    np.testing.assert_array_equal(left.spa.resampled, right.spa.resampled)


@pytest.mark.parametrize("bounds", [[0, 41], [0, 1, 2, 40, 41], [0, 7, 20, 33, 41]])
@pytest.mark.parametrize("group", [256, 3])
def test_trial_statistics_of_column_ranges_joined_are_those_of_the_whole_matrix(
    monkeypatch, bounds, group
):
    """Every column goes through the same operations whatever group it is computed in (and
    whatever the matrix's memory order), so separate workers' column ranges joined give the
    whole matrix's statistics bit for bit, and the same overfitting block."""
    import metrics.research as research

    matrix, benchmark = group_matrix()
    options = {"partitions": 8, "spa_reps": 150, "seed": 4}
    whole = trial_statistics(np.ascontiguousarray(matrix), benchmark, **options)
    monkeypatch.setattr(research, "_GROUP", group)
    parts = [
        trial_statistics(np.asfortranarray(matrix[:, start:stop]), benchmark, **options)
        for start, stop in itertools.pairwise(bounds)
    ]
    joined = TrialStatistics.concat(parts)
    assert_same_statistics(joined, whole)
    report = overfitting_report(matrix, benchmark, best_index=17, benchmark="SPY", **options)
    assert overfitting_from_statistics(joined, matrix[:, 17], best_index=17, benchmark="SPY") == (
        report
    )
    assert report["n_trials"] == 41 and report["spa"]["reps"] == 150


@pytest.mark.parametrize("block_size", [2, 25])
def test_spa_maxima_of_column_ranges_joined_give_the_whole_matrix_pvalues(block_size):
    """Short blocks take the dense path (bar counts), long ones the sparse one (runs)."""
    matrix, benchmark = group_matrix()
    resamples = spa_resamples(613, block_size, 300, 8)
    parts = [
        spa_maxima(np.asfortranarray(matrix[:, start : start + 10]), benchmark, resamples)
        for start in range(0, 41, 10)
    ]
    whole = spa_reality_check(benchmark, matrix, reps=300, block_size=block_size, seed=8)
    assert SpaMaxima.concat(parts).pvalues() == whole
    assert whole == {
        "pvalue_lower": (expected := arch_spa(benchmark, matrix, 300, block_size, 8))["lower"],
        "pvalue_consistent": expected["consistent"],
        "pvalue_upper": expected["upper"],
        "reps": 300,
        "block_size": block_size,
        "seed": 8,
    }


def test_statistics_of_different_resamples_or_blocks_do_not_join():
    matrix, benchmark = group_matrix()
    first = trial_statistics(matrix[:, :5], benchmark, partitions=8, spa_reps=50, seed=1)
    other_seed = trial_statistics(matrix[:, 5:], benchmark, partitions=8, spa_reps=50, seed=2)
    other_blocks = trial_statistics(matrix[:, 5:], benchmark, partitions=10, spa_reps=50, seed=1)
    with pytest.raises(ValueError, match="SPA maxima to join must come from the same resamples"):
        TrialStatistics.concat([first, other_seed])
    with pytest.raises(ValueError, match="must come from the same rows and partitions"):
        TrialStatistics.concat([first, other_blocks])


# --- bad parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("partitions", "message"),
    [
        (5, "partitions must be an even integer between 4 and 24, got 5"),
        (2, "partitions must be an even integer between 4 and 24, got 2"),
        (26, "partitions must be an even integer between 4 and 24, got 26"),
        (8.0, "partitions must be an even integer between 4 and 24, got 8.0"),
        (True, "partitions must be an even integer between 4 and 24, got True"),
        (16, r"partitions must be at most a tenth of the bars \(12 for 120 bars\), got 16"),
    ],
)
def test_bad_partitions(partitions, message):
    with pytest.raises(ValueError, match=message):
        pbo_cscv(noise_matrix(120, 4, seed=0), partitions)


def test_partitions_at_the_limits_are_accepted():
    assert check_partitions(4, 40) == 4
    assert check_partitions(24, 240) == 24
    assert check_partitions(12, 120) == 12


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (check_confidence, 0, "confidence must be strictly between 0 and 1, got 0"),
        (check_confidence, 1.0, r"confidence must be strictly between 0 and 1, got 1.0"),
        (check_confidence, -0.5, r"confidence must be strictly between 0 and 1, got -0.5"),
        (
            check_confidence,
            "0.9",
            "confidence must be a number strictly between 0 and 1, got '0.9'",
        ),
        (check_resamples, 10_001, "resamples must be between 1 and 10,000, got 10001"),
        (check_resamples, 0, "resamples must be between 1 and 10,000, got 0"),
        (check_resamples, 2.5, "resamples must be an integer between 1 and 10,000, got 2.5"),
        (check_block_length, 0, "block_length must be a positive integer, got 0"),
        (check_block_length, -3, "block_length must be a positive integer, got -3"),
        (check_block_length, 1.5, "block_length must be a positive integer, got 1.5"),
        (check_seed, -1, "seed must be a non-negative integer, got -1"),
        (check_seed, 1.5, "seed must be a non-negative integer, got 1.5"),
    ],
)
def test_bad_parameters_raise_clear_errors(check, value, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        check(value)


def test_spa_bad_parameters():
    matrix = noise_matrix(100, 3, seed=0)
    with pytest.raises(ValueError, match="reps must be between 1 and 10,000, got 10001"):
        spa_reality_check(matrix[:, 0], matrix, reps=10_001)
    with pytest.raises(ValueError, match="block_size must be a positive integer, got 0"):
        spa_reality_check(matrix[:, 0], matrix, block_size=0)


def test_non_finite_matrix_is_rejected():
    matrix = noise_matrix(100, 3, seed=0)
    matrix[5, 1] = np.nan
    with pytest.raises(ValueError, match=r"returns_matrix must be finite \(no NaN or infinity\)"):
        pbo_cscv(matrix, 4)


# --- bootstrap confidence intervals ----------------------------------------------------------

BARS_PER_YEAR = 252
CAPITAL = 10_000.0


def reference_statistic(days: float):
    """SPEC §5 applied to a resampled path, written out from the definitions."""

    def statistic(returns: np.ndarray) -> np.ndarray:
        equity = CAPITAL * np.cumprod(1 + returns)
        growth = equity[-1] / CAPITAL
        cagr = growth ** (365.25 / days) - 1
        sharpe = returns.mean() / returns.std(ddof=1) * math.sqrt(BARS_PER_YEAR)
        downside = math.sqrt(np.mean(np.minimum(returns, 0) ** 2))
        sortino = returns.mean() * BARS_PER_YEAR / (downside * math.sqrt(BARS_PER_YEAR))
        volatility = returns.std(ddof=1) * math.sqrt(BARS_PER_YEAR)
        peaks = np.maximum.accumulate(np.concatenate(([CAPITAL], equity)))[1:]
        drawdown = min((equity / peaks - 1).min(), 0.0)
        return np.array([cagr, sharpe, sortino, volatility, drawdown])

    return statistic


def daily_returns(n_bars: int, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    # AR(1) so that the optimal block length is more than one bar.
    shocks = rng.normal(0.0004, 0.01, n_bars)
    returns = np.empty(n_bars)
    returns[0] = shocks[0]
    for t in range(1, n_bars):
        returns[t] = 0.3 * returns[t - 1] + shocks[t]
    return pd.Series(returns, index=pd.bdate_range("2010-01-04", periods=n_bars))


@pytest.mark.parametrize(
    ("confidence", "block_length", "seed"), [(0.95, None, 0), (0.9, 7, 3), (0.5, 1, 11)]
)
def test_bootstrap_intervals_equal_arch(confidence, block_length, seed):
    returns = daily_returns(1500, seed=seed)
    days = (returns.index[-1] - returns.index[0]).days
    values = returns.to_numpy()
    expected_block = (
        max(1.0, optimal_block_length(values)["stationary"].iloc[0])
        if block_length is None
        else block_length
    )
    statistic = reference_statistic(days)
    expected = StationaryBootstrap(expected_block, values, seed=seed).conf_int(
        statistic, reps=300, method="percentile", size=confidence
    )
    resampled = StationaryBootstrap(expected_block, values, seed=seed).apply(statistic, reps=300)

    result = bootstrap_confidence_intervals(
        returns,
        initial_capital=CAPITAL,
        bars_per_year=BARS_PER_YEAR,
        resamples=300,
        confidence=confidence,
        block_length=block_length,
        seed=seed,
    )
    assert result["block_length"] == expected_block
    assert (result["resamples"], result["confidence"], result["seed"]) == (300, confidence, seed)
    point = statistic(values)
    for column, name in enumerate(("cagr", "sharpe", "sortino", "volatility", "max_drawdown")):
        interval = result["metrics"][name]
        assert interval["lower"] == expected[0, column]
        assert interval["upper"] == expected[1, column]
        assert interval["point"] == pytest.approx(point[column], rel=1e-12, abs=1e-15)
    assert result["probability_positive"] == float(np.mean(resampled[:, 1] > 0))


def test_bootstrap_same_inputs_same_answer_and_point_is_the_runs_metric():
    returns = daily_returns(600, seed=5)
    first = bootstrap_confidence_intervals(
        returns, initial_capital=CAPITAL, bars_per_year=BARS_PER_YEAR, resamples=100
    )
    again = bootstrap_confidence_intervals(
        returns, initial_capital=CAPITAL, bars_per_year=BARS_PER_YEAR, resamples=100
    )
    assert first == again
    equity = CAPITAL * (1 + returns).cumprod()
    metrics = compute_metrics(equity, initial_capital=CAPITAL, bars_per_year=BARS_PER_YEAR)
    assert first["metrics"]["cagr"]["point"] == pytest.approx(metrics["cagr"], abs=TOLERANCE)
    assert first["metrics"]["sharpe"]["point"] == pytest.approx(
        metrics["sharpe_ratio"], abs=TOLERANCE
    )
    assert first["metrics"]["max_drawdown"]["point"] == pytest.approx(
        metrics["max_drawdown"], abs=TOLERANCE
    )
    for interval in first["metrics"].values():
        assert interval["lower"] <= interval["upper"]


def test_bootstrap_bad_parameters():
    returns = daily_returns(100, seed=1)
    common = {"initial_capital": CAPITAL, "bars_per_year": BARS_PER_YEAR}
    with pytest.raises(ValueError, match=r"^resamples must be between 1 and 10,000, got 10001$"):
        bootstrap_confidence_intervals(returns, resamples=10_001, **common)
    with pytest.raises(ValueError, match=r"^confidence must be strictly between 0 and 1, got 1$"):
        bootstrap_confidence_intervals(returns, confidence=1, **common)
    with pytest.raises(ValueError, match=r"^block_length must be a positive integer, got 0$"):
        bootstrap_confidence_intervals(returns, block_length=0, **common)
    with pytest.raises(ValueError, match="calendar_days is required"):
        bootstrap_confidence_intervals(returns.to_numpy(), **common)


# --- cost sensitivity ------------------------------------------------------------------------


def test_cost_levels_scale_the_runs_own_costs_or_use_fixed_bps():
    assert cost_sensitivity_levels(0.001, 0.0005) == [
        {"multiplier": 0, "commission": 0.0, "slippage": 0.0},
        {"multiplier": 1, "commission": 0.001, "slippage": 0.0005},
        {"multiplier": 2, "commission": 0.002, "slippage": 0.001},
        {"multiplier": 5, "commission": 0.005, "slippage": 0.0025},
    ]
    assert cost_sensitivity_levels(0.0, 0.0) == [
        {"multiplier": None, "commission": bps / 10_000, "slippage": bps / 10_000}
        for bps in (0, 5, 10, 25)
    ]


def test_breakeven_bisection_finds_the_root_to_a_tenth_of_a_bps():
    calls = []

    def cagr(bps):
        calls.append(bps)
        return 0.1 - bps * 0.0003  # zero at 333.33… bps

    found = breakeven_cost_bps(cagr)
    assert abs(found - 1000 / 3) <= 0.05
    assert calls[:2] == [0.0, 500.0]
    assert len(calls) == 15


def test_breakeven_is_none_outside_the_search_range():
    assert breakeven_cost_bps(lambda bps: -0.01) is None
    assert breakeven_cost_bps(lambda bps: 0.0) is None
    assert breakeven_cost_bps(lambda bps: 0.2) is None
    # A run wiped out by costs has no CAGR: that counts as not profitable.
    assert breakeven_cost_bps(lambda bps: 0.05 if bps < 100 else None) == pytest.approx(
        100, abs=0.05
    )
