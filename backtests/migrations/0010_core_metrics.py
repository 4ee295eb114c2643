"""Runs store the core's metrics, not the v1 presentation of them.

Rows used to keep the v1 contract's flat keys (``perf_sharpe_ratio``, ``risk_max_drawdown`` as a
positive loss, …), which the results API and the Backfolio runs list then converted back. Forward,
each row's flat map becomes the core metrics its contract keys name, in the core's units
(``compute_metrics``' keys; drawdown, VaR and CVaR as negative returns), and every other name a
v1 caller wrote moves to ``extra_metrics`` as written. Backward, the pair becomes the flat map
again. The mapping is frozen here: the migration must not change when the presenters do.
"""

from django.db import migrations, models

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
# The same name and value in both forms (the last three: a run with cash flows).
KEPT = (
    "metrics_spec_version",
    "total_contributions",
    "total_withdrawals",
    "money_weighted_return",
    "error",
)
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
    """(core, extra) from a v1 flat map."""
    if not isinstance(flat, dict):
        return {}, {}
    core, extra = {}, {}
    for key, value in flat.items():
        if key in V1_FLAT_SOURCES:
            source, factor = V1_FLAT_SOURCES[key]
            core[source] = _scaled(value, factor)
        elif key in KEPT:
            core[key] = value
        else:
            extra[key] = value
    return core, extra


def to_flat(core, extra):
    """The v1 flat map of (core, extra): the contract's keys the core has, then ``extra``."""
    core = core if isinstance(core, dict) else {}
    flat = {}
    for key, (source, factor) in V1_FLAT_SOURCES.items():
        if source in core:
            flat[key] = _scaled(core[source], factor)
    for key in KEPT:
        if key in core:
            flat[key] = core[key]
    flat.update(extra if isinstance(extra, dict) else {})
    return flat


def _convert(apps, change):
    Backtest = apps.get_model("backtests", "Backtest")
    rows = Backtest.objects.only("pk", "metrics", "extra_metrics").order_by("pk")
    batch = []
    for row in rows.iterator(chunk_size=BATCH):
        change(row)
        batch.append(row)
        if len(batch) == BATCH:
            Backtest.objects.bulk_update(batch, ["metrics", "extra_metrics"])
            batch = []
    if batch:
        Backtest.objects.bulk_update(batch, ["metrics", "extra_metrics"])


def forward(apps, schema_editor):
    def change(row):
        row.metrics, row.extra_metrics = to_core(row.metrics)

    _convert(apps, change)


def backward(apps, schema_editor):
    def change(row):
        row.metrics, row.extra_metrics = to_flat(row.metrics, row.extra_metrics), {}

    _convert(apps, change)


class Migration(migrations.Migration):
    dependencies = [
        ("backtests", "0009_walk_forward_strategy_snapshot"),
    ]

    operations = [
        migrations.AddField(
            model_name="backtest",
            name="extra_metrics",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RunPython(forward, backward),
    ]
