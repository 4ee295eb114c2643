"""The series the analyst pages draw, derived from a run's stored equity curve (no Django).

Every chart shows numbers the metrics already stand on: the drawdown uses the SPEC §5 definition
(the initial capital counts as the first peak), so the deepest point of the underwater chart is
``risk_max_drawdown``; monthly returns chain from the initial capital, so they compound to
``total_return``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from metrics.analytics import drawdown_period, underwater_stretches
from metrics.calculations import TRADING_DAYS_PER_YEAR

MONTH_LABELS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def series_payload(series: pd.Series) -> dict[str, list]:
    """``{"dates": ["YYYY-MM-DD", ...], "values": [float | None, ...]}`` for a dated series."""
    index = pd.DatetimeIndex(series.index)
    # Vectorised: a 20-year daily curve is 5,000 stamps, and this runs for every chart.
    return {
        "dates": np.datetime_as_string(index.to_numpy(dtype="datetime64[D]"), unit="D").tolist(),
        "values": _numbers(series.to_numpy(dtype="float64")),
    }


def drawdown_series(equity: pd.Series, initial_capital: float) -> pd.Series:
    """E_t / max(C, E_1 … E_t) − 1 for every bar: zero at a new high, negative below one."""
    values = equity.to_numpy(dtype="float64")
    peaks = np.maximum.accumulate(np.concatenate([[initial_capital], values]))[1:]
    return pd.Series(values / peaks - 1.0, index=equity.index, name="drawdown")


def monthly_returns(equity: pd.Series, initial_capital: float) -> dict[str, Any]:
    """Calendar-month returns as a year × month grid, for the heatmap.

    A month's return is its last equity over the previous month's last (the initial capital
    before the first month). Months without bars are ``None``. Also gives each year's return.
    """
    if equity.empty:
        return {"years": [], "months": list(MONTH_LABELS), "values": [], "yearly": []}
    # Dates are in order: a month's last bar is where the next bar's month differs.
    months = pd.DatetimeIndex(equity.index).to_numpy(dtype="datetime64[M]").astype("int64")
    values = equity.to_numpy(dtype="float64")
    month_last = np.flatnonzero(np.append(months[1:] != months[:-1], True))
    month_ends = values[month_last]
    month_keys = months[month_last]  # months since 1970-01
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = month_ends / np.concatenate([[initial_capital], month_ends[:-1]]) - 1.0
    year_of = month_keys // 12 + 1970
    years = np.unique(year_of)
    grid = np.full((len(years), 12), np.nan)
    grid[np.searchsorted(years, year_of), month_keys % 12] = returns
    year_last = np.flatnonzero(np.append(year_of[1:] != year_of[:-1], True))
    year_ends = month_ends[year_last]
    with np.errstate(divide="ignore", invalid="ignore"):
        yearly = year_ends / np.concatenate([[initial_capital], year_ends[:-1]]) - 1.0
    return {
        "years": years.tolist(),
        "months": list(MONTH_LABELS),
        "values": [_numbers(row) for row in grid],
        "yearly": _numbers(yearly),
    }


def _numbers(values: np.ndarray) -> list[float | None]:
    """Finite floats as they are, anything else (NaN, ±inf) as None."""
    values = np.asarray(values, dtype="float64")
    finite = np.isfinite(values)
    return [
        value if ok else None for value, ok in zip(values.tolist(), finite.tolist(), strict=True)
    ]


def benchmark_curve(close: pd.Series, dates: pd.DatetimeIndex, initial_capital: float) -> pd.Series:
    """Buying the benchmark with all the capital at the first date's close and holding it.

    ``close`` is the benchmark's (total-return) close; it is aligned to ``dates`` (the run's bars),
    carrying the last price over days the benchmark did not trade.
    """
    aligned = close.astype("float64").reindex(dates, method="ffill")
    first = aligned.dropna()
    if first.empty:
        return pd.Series(np.nan, index=dates, name="benchmark")
    return (aligned / first.iloc[0] * initial_capital).rename("benchmark")


def sweep_heatmap(
    runs: Iterable[Mapping[str, Any]],
) -> dict[str, Any] | None:
    """A grid of scores when the sweep varies exactly two parameters, else None.

    ``runs`` are ``{"overrides": dict, "score": float | None}``. Nested overrides
    (``signal_plugin_params``) are flattened to dotted names so that a grid over a plugin's two
    parameters is recognised.
    """
    flat_runs = [(_flatten(run.get("overrides") or {}), _number(run.get("score"))) for run in runs]
    if not flat_runs:
        return None
    names = sorted({name for overrides, _ in flat_runs for name in overrides})
    varying = [
        name
        for name in names
        if len({_hashable(overrides.get(name)) for overrides, _ in flat_runs}) > 1
    ]
    if len(varying) != 2:
        return None
    x_name, y_name = varying
    x_values = _sorted_values(overrides.get(x_name) for overrides, _ in flat_runs)
    y_values = _sorted_values(overrides.get(y_name) for overrides, _ in flat_runs)
    grid: list[list[float | None]] = [[None] * len(x_values) for _ in y_values]
    for overrides, score in flat_runs:
        row = y_values.index(overrides.get(y_name))
        column = x_values.index(overrides.get(x_name))
        grid[row][column] = score
    return {"x_name": x_name, "y_name": y_name, "x": x_values, "y": y_values, "z": grid}


def _flatten(overrides: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, list | dict) else value


def _sorted_values(values: Iterable[Any]) -> list[Any]:
    unique: list[Any] = []
    for value in values:
        if value not in unique:
            unique.append(value)
    try:
        return sorted(unique)
    except TypeError:  # mixed types: keep the grid's own order
        return unique


# --- display downsampling ---------------------------------------------------------------------

# A chart is at most ~1,000 pixels wide: two points (the bucket's low and high) per pixel column
# draw the same line as every bar would. Downloads stay whole.
MAX_CHART_POINTS = 2000


def display_positions(values: np.ndarray, max_points: int = MAX_CHART_POINTS) -> np.ndarray:
    """Positions of the points to draw: all of them when they fit, else the first and last
    point and, in each of ``max_points // 2 - 1`` equal buckets between them, the lowest and
    the highest in their order of time, so that no peak or trough disappears.

    NaNs never win a bucket (a bucket of only NaNs keeps its first position)."""
    count = len(values)
    if count <= max_points:
        return np.arange(count)
    buckets = max(max_points // 2 - 1, 1)
    inner = values[1:-1].astype("float64")
    edges = np.linspace(0, len(inner), buckets + 1).astype(int)
    # Buckets differ in length by one at most: as rows of a matrix padded past each bucket's
    # end with values that never win, argmin/argmax pick each bucket's first lowest and highest.
    longest = int(np.diff(edges).max())
    positions = edges[:-1, None] + np.arange(longest)[None, :]
    inside = positions < edges[1:, None]
    taken = inner[np.minimum(positions, len(inner) - 1)]
    missing = ~inside | np.isnan(taken)
    lows = np.argmin(np.where(missing, np.inf, taken), axis=1)
    highs = np.argmax(np.where(missing, -np.inf, taken), axis=1)
    chosen = np.unique(np.concatenate([lows + edges[:-1], highs + edges[:-1]])) + 1
    return np.concatenate([[0], chosen, [count - 1]])


def display_series(series: pd.Series, max_points: int = MAX_CHART_POINTS) -> dict[str, list]:
    """``series_payload`` of the points worth drawing (``display_positions``)."""
    positions = display_positions(series.to_numpy(dtype="float64"), max_points)
    return series_payload(series.iloc[positions])


# --- tear sheet -------------------------------------------------------------------------------

ROLLING_WINDOW_BARS = 126  # six months of daily bars
DRAWDOWN_PERIODS_SHOWN = 5


def rolling_statistics(
    returns: pd.Series,
    benchmark_returns: pd.Series | None,
    *,
    window: int = ROLLING_WINDOW_BARS,
    bars_per_year: float = TRADING_DAYS_PER_YEAR,
) -> dict[str, pd.Series]:
    """Trailing-window annualised Sharpe (no risk-free rate), annualised volatility and beta
    against the benchmark, one value per bar once the window is full.

    Sharpe is mean / sample std × √bars_per_year, volatility sample std × √bars_per_year, as the
    SPEC §5 metrics are; beta is cov(r, b) / var(b) with sample moments. A window of constant
    returns has no Sharpe (and a constant benchmark no beta); a window with a gap has nothing.

    Each window's moments are taken over the window itself (a strided view of the returns, no
    running sums), so they equal a window-by-window computation."""
    root = math.sqrt(bars_per_year)
    values = returns.to_numpy(dtype="float64")
    index = returns.index
    mean, std = _window_moments(values, window)
    flat = np.abs(std) < 1e-15
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(flat, np.nan, mean / std * root)
    volatility = np.where(flat, 0.0, std * root)
    result = {
        "sharpe": pd.Series(sharpe, index=index),
        "volatility": pd.Series(volatility, index=index),
    }
    if benchmark_returns is not None:
        market = benchmark_returns.reindex(index).to_numpy(dtype="float64")
        beta = np.full(len(values), np.nan)
        if len(values) >= window:
            own = _windows(values, window)
            theirs = _windows(market, window)
            own_centred = own - own.mean(axis=1, keepdims=True)
            theirs_centred = theirs - theirs.mean(axis=1, keepdims=True)
            covariance = (own_centred * theirs_centred).sum(axis=1) / (window - 1)
            variance = (theirs_centred * theirs_centred).sum(axis=1) / (window - 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                beta[window - 1 :] = np.where(
                    np.abs(variance) < 1e-15, np.nan, covariance / variance
                )
        result["beta"] = pd.Series(beta, index=index)
    return result


def _windows(values: np.ndarray, window: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(values, window)


def _window_moments(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Each trailing window's mean and sample standard deviation (NaN before the first full
    window, and for any window holding a NaN)."""
    mean = np.full(len(values), np.nan)
    std = np.full(len(values), np.nan)
    if window < 2 or len(values) < window:
        return mean, std
    windows = _windows(values, window)
    mean[window - 1 :] = windows.mean(axis=1)
    centred = windows - mean[window - 1 :, None]
    std[window - 1 :] = np.sqrt((centred * centred).sum(axis=1) / (window - 1))
    return mean, std


def worst_drawdowns(
    equity: pd.Series, initial_capital: float, *, count: int = DRAWDOWN_PERIODS_SHOWN
) -> list[dict[str, Any]]:
    """The ``count`` deepest drawdown periods, deepest first (peak, trough, recovery, depth and
    calendar days, as ``metrics.analytics.drawdown_analysis`` measures them; a tie keeps the
    earlier period first). Only the periods shown are described, not every dip of the run."""
    stretches = underwater_stretches(equity, initial_capital)
    return [
        drawdown_period(
            stretches, stretches.starts[chosen], stretches.stops[chosen], stretches.depths[chosen]
        )
        for chosen in np.argsort(stretches.depths, kind="stable")[:count]
    ]


def yearly_returns(equity: pd.Series, initial_capital: float) -> dict[int, float | None]:
    """Each calendar year's return, chained from the initial capital (as ``monthly_returns``)."""
    grid = monthly_returns(equity, initial_capital)
    return dict(zip(grid["years"], grid["yearly"], strict=True))


# --- compare ----------------------------------------------------------------------------------


def common_period(curves: list[pd.Series]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The dates every curve covers: the latest first date to the earliest last date (None when
    they do not overlap)."""
    if not curves:
        return None
    start = max(pd.Timestamp(curve.index[0]) for curve in curves)
    end = min(pd.Timestamp(curve.index[-1]) for curve in curves)
    return (start, end) if start <= end else None


def rebased(equity: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series | None:
    """The curve between ``start`` and ``end``, scaled so that its first value there is 100."""
    window = equity.loc[(equity.index >= start) & (equity.index <= end)].astype("float64")
    if window.empty or not window.iloc[0]:
        return None
    return window / window.iloc[0] * 100.0


# --- research sweeps --------------------------------------------------------------------------


def parameter_heatmap(
    entries: Iterable[Mapping[str, Any]], x_name: str, y_name: str, *, higher_is_better: bool
) -> dict[str, Any]:
    """The rank metric over two chosen parameters: one cell per (x, y) pair, holding the best
    score of the entries with those two values (whatever their other parameters).

    ``entries`` are ``{"parameters": {dotted name: value}, "score": float | None}``."""
    cells: dict[tuple[Any, Any], float] = {}
    xs: list[Any] = []
    ys: list[Any] = []
    for entry in entries:
        parameters = entry["parameters"]
        if x_name not in parameters or y_name not in parameters:
            continue
        x, y = _hashable(parameters[x_name]), _hashable(parameters[y_name])
        xs.append(x)
        ys.append(y)
        score = _number(entry.get("score"))
        if score is None:
            continue
        kept = cells.get((x, y))
        if kept is None or (score > kept if higher_is_better else score < kept):
            cells[(x, y)] = score
    x_values, y_values = _sorted_values(xs), _sorted_values(ys)
    grid = [[cells.get((x, y)) for x in x_values] for y in y_values]
    return {"x_name": x_name, "y_name": y_name, "x": x_values, "y": y_values, "z": grid}


def cscv_scatter(
    matrix: np.ndarray,
    partitions: int,
    bars_per_year: float = TRADING_DAYS_PER_YEAR,
    max_points: int = MAX_CHART_POINTS,
) -> dict[str, Any]:
    """The points of the PBO (SPEC §13.1): for every CSCV combination of the S blocks of the
    common bars, the best in-sample configuration's annualised Sharpe in sample against out of
    sample, whether its out-of-sample rank was below the median (λ ≤ 0), and the degradation
    line through them (annualised too). ``metrics.research`` computes them exactly as the stored
    PBO; at most ``max_points`` combinations are drawn, taken evenly."""
    from metrics.research import block_statistics, cscv_points, least_squares_line

    common = matrix[~np.isnan(matrix).any(axis=1)]
    points = cscv_points(block_statistics(common, partitions))
    root = math.sqrt(bars_per_year)
    in_sample = np.asarray(points["in_sample"]) * root
    out_of_sample = np.asarray(points["out_of_sample"]) * root
    below = np.asarray(points["logits"]) <= 0.0
    shown = np.arange(len(in_sample))
    if len(shown) > max_points:
        shown = np.unique(np.linspace(0, len(shown) - 1, max_points).astype(int))
    return {
        "combinations": len(in_sample),
        "in_sample": _numbers(in_sample[shown]),
        "out_of_sample": _numbers(out_of_sample[shown]),
        "below_median": below[shown].tolist(),
        "degradation": least_squares_line(in_sample, out_of_sample),
    }


# --- walk-forward -----------------------------------------------------------------------------


def in_sample_segments(
    equity: pd.Series, folds: Iterable[Mapping[str, Any]], max_points: int = MAX_CHART_POINTS
) -> dict[str, list]:
    """Each fold's chosen configuration's real in-sample equity, one segment per fold with a gap
    (``None``) between them, scaled so that it ends where the stitched out-of-sample equity
    stands when the fold's window starts (the value before it, or its first): the in-sample
    path that led into each out-of-sample window. ``folds`` are ``{"start": ISO date of the
    out-of-sample window, "in_sample": the in-sample equity Series}``; each segment is
    downsampled to its share of ``max_points``."""
    folds = [fold for fold in folds if fold.get("in_sample") is not None and len(fold["in_sample"])]
    dates: list[str] = []
    values: list[float | None] = []
    index = pd.DatetimeIndex(equity.index)
    share = max(max_points // max(len(folds), 1), 4)
    for fold in folds:
        start = pd.Timestamp(fold["start"])
        before = equity[index < start]
        after = equity[index >= start]
        if before.empty and after.empty:
            continue
        base = float(before.iloc[-1]) if not before.empty else float(after.iloc[0])
        curve = fold["in_sample"].astype("float64")
        last = float(curve.iloc[-1])
        if not math.isfinite(last) or last == 0:
            continue
        shown = display_series(curve / last * base, share)
        dates.extend(shown["dates"])
        values.extend(shown["values"])
        dates.append(shown["dates"][-1])
        values.append(None)
    return {"dates": dates, "values": values}
