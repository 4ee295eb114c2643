"""Research rows store the core's metrics, not the v1 presentation of them (as runs do since 0010).

Sweep entries (``metrics``), walk-forward folds (``in_sample_metrics``, ``out_of_sample_metrics``)
and a walk-forward's ``result["metrics"]`` used to keep the v1 contract's flat keys
(``perf_sharpe_ratio``, ``risk_max_drawdown`` as a positive loss, …). Forward, each map becomes
the core metrics its contract keys name, in the core's units (``compute_metrics``' keys;
drawdown, VaR and CVaR as negative returns); names the core shares with v1 (the version, the
cash-flow metrics, a failed entry's ``error``) and any other name stay as written, so nothing is
lost. Backward, the core's map becomes the v1 flat map again: the contract's keys the row has,
the shared names, then any other name as written; the core's own span and bar count
(``start_date``, ``end_date``, ``n_bars``), which the v1 form never held, are dropped.
``ResearchSweepEntry.score`` keeps the rank metric's v1 value either way.

The mapping is frozen here (0010's table): the migration must not change when the presenters
do.
"""

from django.db import migrations

# v1 flat key → (core key, factor): the v1 contract's table as it was when rows changed form.
V1_FLAT_SOURCES = {
    "total_return": ("total_return", 1),
    "bars_in_market": ("bars_in_market", 1),
    "perf_cagr": ("cagr", 1),
    "perf_sharpe_ratio": ("sharpe_ratio", 1),
    "perf_sortino_ratio": ("sortino_ratio", 1),
    "perf_calmar_ratio": ("calmar_ratio", 1),
    "risk_max_drawdown": ("max_drawdown", -1),
    "risk_max_drawdown_duration": ("max_drawdown_duration", 1),
    "risk_var_95": ("var_95", -1),
    "risk_cvar_95": ("cvar_95", -1),
    "risk_var_99": ("var_99", -1),
    "risk_cvar_99": ("cvar_99", -1),
    "risk_volatility_annualised": ("volatility_annualised", 1),
    "trade_total_trades": ("total_trades", 1),
    "trade_win_rate": ("win_rate", 1),
    "trade_profit_factor": ("profit_factor", 1),
    "trade_avg_win": ("avg_win", 1),
    "trade_avg_loss": ("avg_loss", 1),
    "trade_expectancy": ("expectancy", 1),
    "trade_turnover_annualised": ("turnover_annualised", 1),
    "final_value": ("final_value", 1),
}
# The same name and value in both forms (the middle three: a run with cash flows).
KEPT = (
    "metrics_spec_version",
    "total_contributions",
    "total_withdrawals",
    "money_weighted_return",
    "error",
)
# compute_metrics' keys that no v1 key shows: the v1 form never held them.
CORE_ONLY = ("start_date", "end_date", "n_bars")
CORE_KEYS = {source for source, _factor in V1_FLAT_SOURCES.values()}
BATCH = 500


def _scaled(value, factor):
    if factor == 1 or value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return -value
    if isinstance(value, float):
        return -value + 0.0  # + 0.0 turns -0.0 into 0.0
    return value


def to_core(flat):
    """The core metrics of a v1 flat map; names that are no contract key stay as written (a
    written name that is also a core key the map's contract keys fill is theirs: the app never
    wrote one)."""
    if not isinstance(flat, dict):
        return flat
    core = {key: value for key, value in flat.items() if key not in V1_FLAT_SOURCES}
    for key, value in flat.items():
        if key in V1_FLAT_SOURCES:
            source, factor = V1_FLAT_SOURCES[key]
            core[source] = _scaled(value, factor)
    return core


def to_flat(core):
    """The v1 flat map of core metrics: the contract's keys the map has (in the contract's
    order), the names both forms share, then every other name as written."""
    if not isinstance(core, dict):
        return core
    flat = {}
    for key, (source, factor) in V1_FLAT_SOURCES.items():
        if source in core:
            flat[key] = _scaled(core[source], factor)
    for key in KEPT:
        if key in core:
            flat[key] = core[key]
    for key, value in core.items():
        if key not in CORE_KEYS and key not in KEPT and key not in CORE_ONLY:
            flat[key] = value
    return flat


def _convert(rows, fields, change, batch_size=BATCH):
    model = rows.model
    batch = []
    for row in rows.only("pk", *fields).order_by("pk").iterator(chunk_size=batch_size):
        for field in fields:
            setattr(row, field, change(getattr(row, field)))
        batch.append(row)
        if len(batch) == batch_size:
            model.objects.bulk_update(batch, fields)
            batch = []
    if batch:
        model.objects.bulk_update(batch, fields)


def _convert_all(apps, change):
    def result(value):
        if not isinstance(value, dict) or not isinstance(value.get("metrics"), dict):
            return value
        return {**value, "metrics": change(value["metrics"])}

    entries = apps.get_model("backtests", "ResearchSweepEntry").objects.all()
    _convert(entries, ["metrics"], change)
    folds = apps.get_model("backtests", "WalkForwardFold").objects.all()
    _convert(folds, ["in_sample_metrics", "out_of_sample_metrics"], change)
    results = apps.get_model("backtests", "WalkForward").objects.filter(result__isnull=False)
    _convert(results, ["result"], result, batch_size=50)  # a result holds the stitched equity


def forward(apps, schema_editor):
    _convert_all(apps, to_core)


def backward(apps, schema_editor):
    _convert_all(apps, to_flat)


class Migration(migrations.Migration):
    dependencies = [
        ("backtests", "0012_walk_forward_fold_done"),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]
