"""The price store: aligned, adjusted, optionally resampled prices for a list of symbols.

Pure Python (numpy, pandas): no Django. Sources register by name (``register_source``); the
``bundled`` source (Parquet files in ``marketdata/data/``) is always there, and the Django app adds
an ``uploaded`` source at start-up. When two sources hold the same symbol, the one registered first
wins, so bundled data cannot be shadowed by an upload.

``get_store()`` returns the process-wide store. It caches each symbol's raw history and the
results of ``load`` (keyed by every argument and by every source's ``version()``; up to 1,024
frames and 256 MB of prices), so repeated requests cost a dictionary lookup and a few shallow
copies.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from marketdata.base import SOURCE_COLUMNS, MarketDataError, PriceSource, SymbolCoverage
from marketdata.calendar import TradingCalendar, us_trading_calendar
from marketdata.resample import TIMEFRAMES, BarArrays, period_starts, resample_bars
from marketdata.sources.bundled import BundledSource
from marketdata.synthetic import CASH_PRICE, SymbolSpec, leveraged_prices, parse_symbol

__all__ = [
    "ADJUSTMENTS",
    "TIMEFRAMES",
    "MarketDataError",
    "PriceFrame",
    "PriceSource",
    "PriceStore",
    "SymbolCoverage",
    "get_store",
    "parse_symbol",
]

ADJUSTMENTS = ("total_return", "split_only")
PRICE_FIELDS = ("open", "high", "low", "close", "volume")
# The most daily rows one bar can hold (any calendar, weekends included).
_ROWS_PER_BAR = {"1d": 1, "1wk": 7, "1mo": 31}
_NANOSECONDS = "datetime64[ns]"


@dataclass(frozen=True, eq=False)
class PriceFrame:
    """Prices of several symbols on one index, ready for indicators and engines.

    ``open``/``high``/``low``/``close``/``volume``: one column per symbol, exactly as requested
    (``"SPY"``, ``"QQQ?L=3"``, ``"CASH"``); index: tz-naive DatetimeIndex named ``date``, the union
    of the symbols' bars. Rows before ``start`` are warm-up history; ``start`` (t_1) and ``end``
    (t_n) are the first and last bars of the requested window. Volume is float64 (NaN where the
    source does not know it). A symbol that has not started yet is NaN in warm-up rows; inside the
    window every price is a positive number (gaps carry the last close forward, volume 0).
    ``completeness``: per symbol, the fraction of window bars where the symbol had its own data.
    ``data_hash``: sha256 of the symbols, settings, index and every value in the frames.
    """

    open: pd.DataFrame
    high: pd.DataFrame
    low: pd.DataFrame
    close: pd.DataFrame
    volume: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    completeness: dict[str, float]
    data_hash: str
    adjustment: str = "total_return"
    timeframe: str = "1d"

    @property
    def symbols(self) -> list[str]:
        return list(self.close.columns)

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.close.index

    @property
    def warmup_bars(self) -> int:
        """Bars before ``start`` (may be fewer than asked when the data starts later)."""
        return int(self.close.index.searchsorted(self.start))

    def window(self) -> PriceFrame:
        """The same prices restricted to bars ``start`` … ``end`` (no warm-up rows)."""
        rows = slice(self.warmup_bars, None)
        return PriceFrame(
            **{name: getattr(self, name).iloc[rows] for name in PRICE_FIELDS},
            start=self.start,
            end=self.end,
            completeness=dict(self.completeness),
            data_hash=self.data_hash,
            adjustment=self.adjustment,
            timeframe=self.timeframe,
        )

    def _isolated_copy(self) -> PriceFrame:
        # pandas copy-on-write: shallow copies share memory until either side writes, so a caller
        # changing its frames never reaches the cached ones.
        return PriceFrame(
            **{name: getattr(self, name).copy(deep=False) for name in PRICE_FIELDS},
            start=self.start,
            end=self.end,
            completeness=dict(self.completeness),
            data_hash=self.data_hash,
            adjustment=self.adjustment,
            timeframe=self.timeframe,
        )


@dataclass(frozen=True)
class _History:
    """One symbol's own rows: dates (datetime64[ns]) and float64 columns of ``SOURCE_COLUMNS``."""

    dates: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    adj_close: np.ndarray
    volume: np.ndarray

    @classmethod
    def from_frame(cls, symbol: str, frame: pd.DataFrame) -> _History:
        missing = [column for column in SOURCE_COLUMNS if column not in frame.columns]
        if missing:
            raise MarketDataError(f"Data for {symbol} lacks columns {missing}", symbol=symbol)
        index = pd.DatetimeIndex(frame.index)
        if index.tz is not None:
            index = index.tz_localize(None)
        dates = index.to_numpy(dtype=_NANOSECONDS).astype("datetime64[D]").astype(_NANOSECONDS)
        if len(dates) > 1 and not (dates[1:] > dates[:-1]).all():
            raise MarketDataError(
                f"Data for {symbol} has unsorted or repeated dates", symbol=symbol
            )
        columns = {column: _read_only(_float_values(frame[column])) for column in SOURCE_COLUMNS}
        return cls(dates=_read_only(dates), **columns)


@dataclass
class _Lru:
    """Least recently used first out, past ``capacity`` entries or, when given, ``max_bytes``
    of what ``weigh`` says each entry holds (the newest entry always stays)."""

    capacity: int
    max_bytes: int | None = None
    weigh: Callable[[Any], int] | None = None
    entries: OrderedDict = field(default_factory=OrderedDict)
    weights: dict = field(default_factory=dict)
    total_bytes: int = 0

    def get(self, key: Hashable):
        value = self.entries.get(key)
        if value is not None:
            self.entries.move_to_end(key)
        return value

    def put(self, key: Hashable, value) -> None:
        if self.weigh is not None:
            self.total_bytes -= self.weights.pop(key, 0)
            self.weights[key] = self.weigh(value)
            self.total_bytes += self.weights[key]
        self.entries[key] = value
        self.entries.move_to_end(key)
        while len(self.entries) > 1 and (
            len(self.entries) > self.capacity
            or (self.max_bytes is not None and self.total_bytes > self.max_bytes)
        ):
            oldest, _value = self.entries.popitem(last=False)
            self.total_bytes -= self.weights.pop(oldest, 0)

    def clear(self) -> None:
        self.entries.clear()
        self.weights.clear()
        self.total_bytes = 0


def _frame_bytes(frame: PriceFrame) -> int:
    return sum(getattr(frame, name).to_numpy().nbytes for name in PRICE_FIELDS)


class PriceStore:
    """Serves ``PriceFrame``s from registered sources, with an in-process cache."""

    def __init__(
        self,
        sources: Iterable[tuple[str, PriceSource]] = (),
        *,
        calendar: TradingCalendar | None = None,
        frame_cache_size: int = 1024,
        frame_cache_bytes: int = 256 * 2**20,
        history_cache_size: int = 128,
    ) -> None:
        self._sources: dict[str, PriceSource] = {}
        self._calendar = calendar
        self._lock = threading.RLock()
        # Bounded by their bytes as much as by their number: a study such as a walk-forward
        # loads a few hundred small frames (each fold's window at each warm-up its definitions
        # need), which a repeat of it, or the next study on those windows, finds here.
        self._frames = _Lru(frame_cache_size, max_bytes=frame_cache_bytes, weigh=_frame_bytes)
        self._histories = _Lru(history_cache_size)
        self._bar_counts = _Lru(1024)  # the calendar never changes: counts are kept
        self._coverage_versions: tuple | None = None
        self._coverage: dict[str, SymbolCoverage] = {}
        self._coverage_sources: dict[str, str] = {}
        for name, source in sources:
            self.register_source(name, source)

    # -- sources ---------------------------------------------------------------------------

    def register_source(self, name: str, source: PriceSource) -> None:
        """Add ``source`` under ``name``; registering a name again replaces it in place."""
        for method in ("symbols", "load", "version"):
            if not callable(getattr(source, method, None)):
                raise TypeError(f"source {name!r} has no {method}() method")
        with self._lock:
            self._sources[name] = source
            self._coverage_versions = None

    @property
    def source_names(self) -> list[str]:
        return list(self._sources)

    # -- coverage --------------------------------------------------------------------------

    def symbols(self) -> list[SymbolCoverage]:
        """Every stored symbol with its coverage, sorted by symbol (CASH and leveraged
        symbols are computed, so they are not listed)."""
        coverage, _ = self._coverage_map(self._versions())
        return [coverage[symbol] for symbol in sorted(coverage)]

    def coverage(self, symbol: str) -> SymbolCoverage:
        """Coverage of ``symbol``; for ``SYM?L=x`` the underlying's dates (source
        ``"synthetic"``), for CASH any date (source ``"synthetic"``, rows 0)."""
        spec = parse_symbol(symbol)
        if spec.is_cash:
            return SymbolCoverage(symbol, date.min, date.max, 0, "synthetic")
        coverage, _ = self._coverage_map(self._versions())
        base = self._base_coverage(symbol, spec, coverage)
        if spec.is_leveraged:
            return SymbolCoverage(symbol, base.first_date, base.last_date, base.rows, "synthetic")
        return base

    def coverage_problems(
        self, symbols: str | Iterable[str], start: date | str, end: date | str
    ) -> list[MarketDataError]:
        """Every reason ``load(symbols, start, end)`` would fail on data, without loading prices:
        one error per bad symbol (format, unknown, range not covered), or the bad dates."""
        try:
            start_day, end_day = _window_bounds(start, end)
            requested = _requested_symbols(symbols)
        except MarketDataError as error:
            return [error]
        coverage, _ = self._coverage_map(self._versions())
        problems = []
        for text in requested:
            try:
                self._check_symbol(text, parse_symbol(text), start_day, end_day, coverage)
            except MarketDataError as error:
                problems.append(error)
        return problems

    def bar_count(self, start: date | str, end: date | str, *, timeframe: str = "1d") -> int:
        """How many ``timeframe`` bars the trading calendar has from ``start`` to ``end``
        inclusive: what a run over that window reads, measured without loading prices."""
        key = (str(start), str(end), timeframe)
        with self._lock:
            count = self._bar_counts.get(key)
        if count is None:
            start_day, end_day = pd.Timestamp(start), pd.Timestamp(end)
            sessions = self.calendar.sessions_through(end_day, first=start_day)
            count = len(sessions) if timeframe == "1d" else len(period_starts(sessions, timeframe))
            with self._lock:
                self._bar_counts.put(key, count)
        return count

    def history_bars(
        self, symbols: Iterable[str], end: date | str, *, timeframe: str = "1d"
    ) -> dict[str, int]:
        """How many ``timeframe`` bars each symbol has from its first date through ``end`` (the
        longest history an indicator on it can read); 0 for a symbol without data. CASH and
        leveraged symbols have their underlying's dates (CASH: every calendar session)."""
        coverage, _ = self._coverage_map(self._versions())
        first_session = pd.Timestamp(self.calendar.sessions[0]).date()
        bars: dict[str, int] = {}
        for symbol in dict.fromkeys(symbols):
            try:
                spec = parse_symbol(symbol)
                first = (
                    first_session
                    if spec.is_cash
                    else self._base_coverage(symbol, spec, coverage).first_date
                )
            except MarketDataError:
                bars[symbol] = 0
                continue
            bars[symbol] = self.bar_count(max(first, first_session), end, timeframe=timeframe)
        return bars

    def _check_symbol(
        self,
        text: str,
        spec: SymbolSpec,
        start: pd.Timestamp,
        end: pd.Timestamp,
        coverage: dict[str, SymbolCoverage],
    ) -> SymbolCoverage | None:
        """The coverage of ``text``'s stored series, after checking it covers [start, end].

        A range is covered when the symbol has data on or before the first trading day on or
        after ``start``, and on or after the last trading day on or before ``end`` (trading days
        from ``marketdata.calendar``). So a window may begin or end on a weekend or holiday:
        data starting 2020-01-02 covers a request from 2020-01-01.
        """
        if spec.is_cash:
            return None
        base = self._base_coverage(text, spec, coverage)
        first, last = pd.Timestamp(base.first_date), pd.Timestamp(base.last_date)
        covered = (first <= start or first <= self._first_session(start)) and (
            last >= end or last >= self._last_session(end)
        )
        if not covered:
            raise MarketDataError(
                f"Symbol {text} data not available for requested date range "
                f"{start.date().isoformat()} to {end.date().isoformat()} "
                f"({base.symbol} has data from {base.first_date.isoformat()} "
                f"to {base.last_date.isoformat()})",
                symbol=text,
                coverage=base,
            )
        return base

    def _base_coverage(
        self, text: str, spec: SymbolSpec, coverage: dict[str, SymbolCoverage]
    ) -> SymbolCoverage:
        base = coverage.get(spec.base)
        if base is None:
            available = ", ".join(sorted(coverage)) or "none"
            raise MarketDataError(
                f"Symbol {text} data not available for requested date range "
                f"(no data for {spec.base}; available symbols: {available})",
                symbol=text,
            )
        return base

    def _first_session(self, day: pd.Timestamp) -> pd.Timestamp:
        session = self.calendar.first_session_on_or_after(day)
        return session if session is not None else day

    def _last_session(self, day: pd.Timestamp) -> pd.Timestamp:
        session = self.calendar.last_session_on_or_before(day)
        return session if session is not None else day

    @property
    def calendar(self) -> TradingCalendar:
        if self._calendar is None:
            self._calendar = us_trading_calendar()
        return self._calendar

    def versions(self) -> tuple:
        """Every source's version token, ``((name, token), …)``: when prices may have changed,
        this has changed (for keys of anything derived from prices)."""
        return self._versions()

    def _versions(self) -> tuple:
        with self._lock:
            sources = list(self._sources.items())
        return tuple((name, source.version()) for name, source in sources)

    def _coverage_map(self, versions: tuple) -> tuple[dict[str, SymbolCoverage], dict[str, str]]:
        with self._lock:
            if versions == self._coverage_versions:
                return self._coverage, self._coverage_sources
            coverage: dict[str, SymbolCoverage] = {}
            source_of: dict[str, str] = {}
            for name, source in self._sources.items():
                for item in source.symbols():
                    if item.symbol not in coverage:
                        coverage[item.symbol] = item
                        source_of[item.symbol] = name
            self._coverage, self._coverage_sources = coverage, source_of
            self._coverage_versions = versions
            return coverage, source_of

    # -- loading ---------------------------------------------------------------------------

    def load(
        self,
        symbols: str | Iterable[str],
        start: date | str,
        end: date | str,
        *,
        adjustment: str = "total_return",
        timeframe: str = "1d",
        warmup_bars: int = 0,
    ) -> PriceFrame:
        """Prices of ``symbols`` from ``start`` to ``end`` (inclusive), aligned on one index.

        - ``adjustment``: ``"total_return"`` multiplies open, high, low and close by
          adj_close/close, so prices and returns include dividends; ``"split_only"`` keeps OHLC as
          stored (split-adjusted only).
        - ``timeframe``: ``"1d"``, or ``"1wk"``/``"1mo"`` bars built from the daily bars of the
          window (see ``marketdata.resample``; a week or month cut by ``start`` or ``end`` makes a
          shorter first or last bar, labelled with its last trading day).
        - ``warmup_bars``: bars of history before ``start`` to include (for indicators); fewer
          when the data does not reach back that far.
        - Alignment: the index is the union of the symbols' dates; a symbol without a row on a
          date carries its last close forward (open = high = low = that close, volume 0).
        - Coverage: see ``_check_symbol``; symbols are ``parse_symbol`` text (leveraged, CASH).
          Repeated symbols are loaded once.

        Raises ``MarketDataError`` naming the symbol and the coverage that exists, for bad dates
        (start not before end, unparsable), an unknown adjustment or timeframe, or a window with
        no trading day.
        """
        start_day, end_day = _window_bounds(start, end)
        requested = _requested_symbols(symbols)
        if adjustment not in ADJUSTMENTS:
            raise MarketDataError(
                f"Unknown price adjustment {adjustment!r}; expected one of {', '.join(ADJUSTMENTS)}"
            )
        if timeframe not in TIMEFRAMES:
            raise MarketDataError(
                f"Unknown timeframe {timeframe!r}; expected one of {', '.join(TIMEFRAMES)}"
            )
        if isinstance(warmup_bars, bool) or not isinstance(warmup_bars, int | np.integer):
            raise MarketDataError(f"warmup_bars must be a whole number, got {warmup_bars!r}")
        if warmup_bars < 0:
            raise MarketDataError(f"warmup_bars must not be negative, got {warmup_bars}")

        versions = self._versions()
        key = (requested, start_day, end_day, adjustment, timeframe, int(warmup_bars), versions)
        with self._lock:
            cached = self._frames.get(key)
        if cached is None:
            cached = self._build(
                requested, start_day, end_day, adjustment, timeframe, int(warmup_bars), versions
            )
            with self._lock:
                self._frames.put(key, cached)
        return cached._isolated_copy()

    def _build(
        self,
        requested: tuple[str, ...],
        start: pd.Timestamp,
        end: pd.Timestamp,
        adjustment: str,
        timeframe: str,
        warmup_bars: int,
        versions: tuple,
    ) -> PriceFrame:
        coverage, source_of = self._coverage_map(versions)
        specs = [parse_symbol(text) for text in requested]
        for text, spec in zip(requested, specs, strict=True):
            self._check_symbol(text, spec, start, end, coverage)

        series: list[_History | None] = []
        for spec in specs:
            if spec.is_cash:
                series.append(None)
                continue
            history = self._history(spec.base, source_of[spec.base], versions)
            series.append(_symbol_series(history, spec, adjustment))

        daily = self._align(series, start, end, timeframe, warmup_bars)
        first_in_window = int(np.searchsorted(daily.dates, np.datetime64(start, "ns")))
        if first_in_window >= len(daily):
            raise MarketDataError(
                f"No trading days between {start.date().isoformat()} and {end.date().isoformat()}"
            )
        window = resample_bars(daily.rows(first_in_window, len(daily)), timeframe)
        warmup = _warmup(daily.rows(0, first_in_window), timeframe, warmup_bars)
        bars = BarArrays.concatenate(warmup, window)
        return _price_frame(requested, bars, window, adjustment, timeframe)

    def _history(self, symbol: str, source_name: str, versions: tuple) -> _History:
        version = dict(versions)[source_name]
        key = (source_name, symbol, version)
        with self._lock:
            history = self._histories.get(key)
            source = self._sources[source_name]
        if history is None:
            frame = source.load(symbol)
            if frame is None or not len(frame):
                raise MarketDataError(
                    f"Symbol {symbol} data not available for requested date range "
                    f"(source {source_name} listed {symbol} but returned no data)",
                    symbol=symbol,
                )
            history = _History.from_frame(symbol, frame)
            with self._lock:
                self._histories.put(key, history)
        return history

    def _align(
        self,
        series: list[_History | None],
        start: pd.Timestamp,
        end: pd.Timestamp,
        timeframe: str,
        warmup_bars: int,
    ) -> BarArrays:
        """Daily bars of every symbol on the union of their dates, from as far back as the
        warm-up needs up to ``end``."""
        start_ns, end_ns = np.datetime64(start, "ns"), np.datetime64(end, "ns")
        # Daily rows needed before start: a week has at most 7 rows and a month 31, so this many
        # rows hold ``warmup_bars`` whole periods plus the partial one where the rows begin.
        reach = warmup_bars * _ROWS_PER_BAR[timeframe]
        if warmup_bars and timeframe != "1d":
            reach += _ROWS_PER_BAR[timeframe]
        stored = [item for item in series if item is not None]
        if stored:
            first_date = _first_needed_date(stored, start_ns, reach)
            spans = [
                (
                    np.searchsorted(item.dates, first_date, side="left"),
                    np.searchsorted(item.dates, end_ns, side="right"),
                )
                for item in stored
            ]
            dates = _union(
                [item.dates[low:high] for item, (low, high) in zip(stored, spans, strict=True)]
            )
        else:
            # Only CASH: its bars are the trading days, with enough before start for warm-up.
            dates = self.calendar.sessions_through(end, first=start, earlier=reach)

        rows, columns = len(dates), len(series)
        close = np.full((rows, columns), np.nan)
        open_, high, low = close.copy(), close.copy(), close.copy()
        volume = close.copy()
        own = np.zeros((rows, columns), dtype=bool)
        seeds = np.full(columns, np.nan)
        stored_spans = iter(spans) if stored else iter(())
        for column, item in enumerate(series):
            if item is None:
                for target in (open_, high, low, close):
                    target[:, column] = CASH_PRICE
                volume[:, column] = 0.0
                own[:, column] = True
                continue
            first_row, stop_row = next(stored_spans)
            if first_row > 0:
                seeds[column] = item.close[first_row - 1]
            positions = np.searchsorted(dates, item.dates[first_row:stop_row])
            own[positions, column] = True
            for target, values in (
                (open_, item.open),
                (high, item.high),
                (low, item.low),
                (close, item.close),
                (volume, item.volume),
            ):
                target[positions, column] = values[first_row:stop_row]
        _carry_forward(open_, high, low, close, volume, own, seeds)
        return BarArrays(dates, open_, high, low, close, volume, own)


def _first_needed_date(stored: list[_History], start: np.datetime64, reach: int) -> np.datetime64:
    """The earliest date the aligned rows need: ``reach`` union rows before ``start``.

    Any symbol with ``reach`` rows of its own before ``start`` guarantees the union has as many
    from that symbol's ``reach``-th row on; the latest such date bounds the work. When no symbol
    has that much history, all of it is needed.
    """
    candidates = []
    for item in stored:
        row = np.searchsorted(item.dates, start, side="left") - reach
        if row > 0:
            candidates.append(item.dates[min(row, len(item.dates) - 1)])
    if not candidates:
        return min(item.dates[0] for item in stored)
    return min(max(candidates), start)


def _union(date_arrays: list[np.ndarray]) -> np.ndarray:
    dates = date_arrays[0]
    # Bundled series share their dates, so the sort behind a union is usually avoidable.
    if all(np.array_equal(dates, other) for other in date_arrays[1:]):
        return dates
    merged = np.sort(np.concatenate(date_arrays))
    return merged[np.concatenate([[True], merged[1:] != merged[:-1]])]


def _warmup(history: BarArrays, timeframe: str, warmup_bars: int) -> BarArrays:
    """The last ``warmup_bars`` bars of ``timeframe`` in the daily ``history`` before start."""
    if not warmup_bars or not len(history):
        return history.rows(0, 0)
    if timeframe == "1d":
        return history.rows(max(len(history) - warmup_bars, 0), len(history))
    starts = period_starts(history.dates, timeframe)
    first_row = int(starts[max(len(starts) - warmup_bars, 0)])
    return resample_bars(history.rows(first_row, len(history)), timeframe)


def _carry_forward(open_, high, low, close, volume, own, seeds) -> None:
    """Fill rows where a symbol had no own data with its last close (from an earlier row, or
    ``seeds``: its close just before the first row); nothing is filled before its first close."""
    rows = np.arange(len(close))[:, None]
    last_own = np.maximum.accumulate(np.where(own, rows, -1), axis=0)
    carried = np.take_along_axis(close, np.maximum(last_own, 0), axis=0)
    carried = np.where(last_own >= 0, carried, seeds[None, :])
    gap = ~own & ~np.isnan(carried)
    if not gap.any():
        return
    for target in (open_, high, low, close):
        target[gap] = carried[gap]
    volume[gap] = 0.0


def _symbol_series(history: _History, spec: SymbolSpec, adjustment: str) -> _History:
    if adjustment == "total_return":
        factor = history.adj_close / history.close
        adjusted = _History(
            dates=history.dates,
            open=history.open * factor,
            high=history.high * factor,
            low=history.low * factor,
            close=history.adj_close.copy(),
            adj_close=history.adj_close,
            volume=history.volume,
        )
    else:
        adjusted = history
    if not spec.is_leveraged:
        return adjusted
    prices = leveraged_prices(adjusted.close, spec)
    return _History(
        dates=history.dates,
        open=prices,
        high=prices,
        low=prices,
        close=prices,
        adj_close=prices,
        volume=np.zeros(len(prices)),
    )


def _price_frame(
    symbols: tuple[str, ...],
    bars: BarArrays,
    window: BarArrays,
    adjustment: str,
    timeframe: str,
) -> PriceFrame:
    index = pd.DatetimeIndex(bars.dates, name="date")
    columns = pd.Index(symbols)
    digest = hashlib.sha256()
    digest.update(repr((symbols, adjustment, timeframe)).encode())
    digest.update(np.ascontiguousarray(bars.dates).view(np.int64).tobytes())
    frames = {}
    for name in PRICE_FIELDS:
        values = np.ascontiguousarray(getattr(bars, name))
        digest.update(values.tobytes())
        values.flags.writeable = False
        frames[name] = pd.DataFrame(values, index=index, columns=columns, copy=False)
    completeness = {
        symbol: float(share) for symbol, share in zip(symbols, window.own.mean(axis=0), strict=True)
    }
    return PriceFrame(
        **frames,
        start=pd.Timestamp(window.dates[0]),
        end=pd.Timestamp(window.dates[-1]),
        completeness=completeness,
        data_hash=digest.hexdigest(),
        adjustment=adjustment,
        timeframe=timeframe,
    )


def _requested_symbols(symbols: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(symbols, str):
        symbols = [symbols]
    requested = tuple(dict.fromkeys(symbol.strip() for symbol in symbols))
    if not requested:
        raise MarketDataError("At least one symbol is required")
    return requested


def _window_bounds(start: date | str, end: date | str) -> tuple[pd.Timestamp, pd.Timestamp]:
    start_day, end_day = _day(start, "start"), _day(end, "end")
    if start_day >= end_day:
        raise MarketDataError(
            f"Start date {start_day.date().isoformat()} must be before end date "
            f"{end_day.date().isoformat()}"
        )
    return start_day, end_day


def _day(value: date | str, name: str) -> pd.Timestamp:
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise MarketDataError(f"Invalid {name} date {value!r}: expected YYYY-MM-DD") from None
    if isinstance(value, datetime | pd.Timestamp | np.datetime64):
        timestamp = pd.Timestamp(value)
        if timestamp.tz is not None:
            timestamp = timestamp.tz_localize(None)
        return timestamp.normalize()
    if isinstance(value, date):
        return pd.Timestamp(value)
    raise MarketDataError(f"Invalid {name} date {value!r}: expected a date or YYYY-MM-DD")


def _float_values(column: pd.Series) -> np.ndarray:
    if column.dtype == np.float64:
        return column.to_numpy(copy=True)
    # Nullable integers (volume) and the like: missing values become NaN.
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def _read_only(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False
    return values


class BatchLookups:
    """The store's answers to what validating a run asks of the data — coverage problems,
    symbols' history and the calendar's bar counts — kept for one batch of validations: the
    thousands of configurations of one sweep ask the same few questions. Made for the batch and
    dropped with it (prices may change between requests); each answer is a copy."""

    def __init__(self, store: PriceStore | None = None) -> None:
        self.store = store or get_store()
        self._answers: dict[tuple, Any] = {}

    def _answer(self, key: tuple, ask):
        if key not in self._answers:
            self._answers[key] = ask()
        return self._answers[key]

    def coverage_problems(
        self, symbols: str | Iterable[str], start: date | str, end: date | str
    ) -> list[MarketDataError]:
        symbols = symbols if isinstance(symbols, str) else list(symbols)
        key = ("coverage", _symbols_key(symbols), str(start), str(end))
        return list(self._answer(key, lambda: self.store.coverage_problems(symbols, start, end)))

    def history_bars(
        self, symbols: Iterable[str], end: date | str, *, timeframe: str = "1d"
    ) -> dict[str, int]:
        symbols = list(symbols)
        key = ("history", _symbols_key(symbols), str(end), timeframe)
        return dict(
            self._answer(key, lambda: self.store.history_bars(symbols, end, timeframe=timeframe))
        )

    def bar_count(self, start: date | str, end: date | str, *, timeframe: str = "1d") -> int:
        key = ("bars", str(start), str(end), timeframe)
        return self._answer(key, lambda: self.store.bar_count(start, end, timeframe=timeframe))


def _symbols_key(symbols: str | Iterable[str]) -> tuple:
    return (symbols,) if isinstance(symbols, str) else tuple(symbols)


_store: PriceStore | None = None
_store_lock = threading.Lock()


def get_store() -> PriceStore:
    """The process-wide store, with the bundled source registered."""
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                _store = PriceStore([("bundled", BundledSource())])
    return _store
