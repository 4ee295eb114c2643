"""The analysts' pages and the JSON their charts read (SPEC §11)."""

from django.urls import path

from backtests.pages import views

app_name = "pages"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("backtests/", views.backtest_list, name="backtest-list"),
    path("backtests/<uuid:backtest_id>/", views.backtest_detail, name="backtest-detail"),
    path(
        "backtests/<uuid:backtest_id>/chart-data",
        views.backtest_chart_data,
        name="backtest-chart-data",
    ),
    path("backtests/<uuid:backtest_id>/parity", views.backtest_parity, name="backtest-parity"),
    path("backtests/<uuid:backtest_id>/rerun", views.backtest_rerun, name="backtest-rerun"),
    path("backtests/<uuid:backtest_id>/retry", views.backtest_retry, name="backtest-retry"),
    path("backtests/<uuid:backtest_id>/status", views.backtest_status, name="backtest-status"),
    path(
        "backtests/<uuid:backtest_id>/robustness",
        views.backtest_robustness,
        name="backtest-robustness",
    ),
    path(
        "backtests/<uuid:backtest_id>/robustness/start",
        views.backtest_robustness_start,
        name="backtest-robustness-start",
    ),
    path(
        "backtests/<uuid:backtest_id>/equity.csv",
        views.backtest_equity_csv,
        name="backtest-equity-csv",
    ),
    path(
        "backtests/<uuid:backtest_id>/trades.csv",
        views.backtest_trades_csv,
        name="backtest-trades-csv",
    ),
    path("compare/", views.compare, name="compare"),
    path("compare/chart-data", views.compare_chart_data, name="compare-chart-data"),
    path("sweeps/", views.sweep_list, name="sweep-list"),
    path("sweeps/<uuid:sweep_id>/", views.sweep_detail, name="sweep-detail"),
    path("sweeps/<uuid:sweep_id>/status", views.sweep_status, name="sweep-status"),
    path("strategies/", views.strategy_list, name="strategy-list"),
    path("strategies/new", views.strategy_new, name="strategy-new"),
    path("strategies/validate", views.strategy_validate, name="strategy-validate"),
    path("strategies/builtin", views.strategy_builtin, name="strategy-builtin"),
    path("strategies/<uuid:strategy_id>/", views.strategy_detail, name="strategy-detail"),
    path("strategies/<uuid:strategy_id>/edit", views.strategy_edit, name="strategy-edit"),
    path(
        "strategies/<uuid:strategy_id>/backtests/new",
        views.strategy_start_backtest,
        name="strategy-start-backtest",
    ),
    path(
        "strategies/<uuid:strategy_id>/sweeps/new",
        views.strategy_start_sweep,
        name="strategy-start-sweep",
    ),
    path(
        "strategies/<uuid:strategy_id>/portfolio-runs/new",
        views.strategy_start_portfolio_run,
        name="strategy-start-portfolio-run",
    ),
    path(
        "strategies/<uuid:strategy_id>/research-sweeps/new",
        views.strategy_start_research_sweep,
        name="strategy-start-research-sweep",
    ),
    path(
        "strategies/<uuid:strategy_id>/walk-forwards/new",
        views.strategy_start_walk_forward,
        name="strategy-start-walk-forward",
    ),
    path(
        "research/sweeps/<uuid:sweep_id>/",
        views.research_sweep_detail,
        name="research_sweep_detail",
    ),
    path(
        "research/sweeps/<uuid:sweep_id>/chart-data",
        views.research_sweep_chart_data,
        name="research_sweep_chart_data",
    ),
    path(
        "research/sweeps/<uuid:sweep_id>/compare-top",
        views.research_sweep_compare_top,
        name="research_sweep_compare_top",
    ),
    path(
        "research/sweeps/<uuid:sweep_id>/status",
        views.research_sweep_status,
        name="research_sweep_status",
    ),
    path(
        "research/walk-forwards/<uuid:walk_forward_id>/",
        views.walk_forward_detail,
        name="walk_forward_detail",
    ),
    path(
        "research/walk-forwards/<uuid:walk_forward_id>/chart-data",
        views.walk_forward_chart_data,
        name="walk_forward_chart_data",
    ),
    path(
        "research/walk-forwards/<uuid:walk_forward_id>/status",
        views.walk_forward_status,
        name="walk_forward_status",
    ),
]
