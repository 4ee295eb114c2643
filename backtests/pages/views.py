"""The analysts' pages (SPEC §11): server-rendered HTML, and the JSON their charts draw.

Every view requires an active staff user (SPEC §10) and sends everyone else to the login page.
Writes go through ``backtests.services`` exactly as the API's do, recorded with source ``ui``.
"""

from __future__ import annotations

import csv
import functools
import json
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import user_passes_test
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from backfolio.common.errors import Conflict, InvalidInput
from backfolio.common.renderers import dumps
from backtests import services
from backtests.models import Backtest, Sweep
from backtests.pages import selectors
from backtests.pages.filters import BacktestPageFilter
from backtests.pages.forms import (
    BacktestStartForm,
    PortfolioRunForm,
    ResearchSweepStartForm,
    SweepStartForm,
    WalkForwardStartForm,
)
from backtests.research.models import ResearchSweep
from backtests.research.walk_forward.models import WalkForward
from strategies.models import Strategy

MAX_COMPARED = 10
MIN_COMPARED = 2


def _is_staff(user) -> bool:
    return user.is_active and user.is_staff


def staff_required(view):
    """Staff only; anyone else goes to the login page (SPEC §10: result pages need staff)."""
    return functools.wraps(view)(user_passes_test(_is_staff, login_url=settings.LOGIN_URL)(view))


def _pretty(document) -> str:
    return json.dumps(document, indent=2, sort_keys=True, default=str)


def _json(data, *, status: int = 200) -> HttpResponse:
    # orjson: NaN and infinities become null, as everywhere else in the service.
    return HttpResponse(dumps(data), content_type="application/json", status=status)


# --- dashboard --------------------------------------------------------------------------------


@staff_required
@require_GET
def dashboard(request):
    from marketdata.selectors import symbol_list

    return render(
        request,
        "pages/dashboard.html",
        {
            "recent_backtests": selectors.recent_backtests(),
            "active_tasks": selectors.active_tasks(),
            "symbols": symbol_list(),
        },
    )


# --- backtests --------------------------------------------------------------------------------


@staff_required
@require_GET
def backtest_list(request):
    queryset = selectors.backtests_for_list()
    filterset = BacktestPageFilter(request.GET or None, queryset=queryset)
    rows = filterset.qs if filterset.is_bound and filterset.is_valid() else queryset
    page = selectors.backtest_page(rows, page=request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    unsorted = query.copy()
    unsorted.pop("sort", None)
    return render(
        request,
        "pages/backtest_list.html",
        {
            "filter": filterset,
            "page": page,
            "query": query.urlencode(),
            "query_nosort": unsorted.urlencode(),
            "current_sort": request.GET.get("sort", ""),
        },
    )


def _backtest_page(request, backtest_id: uuid.UUID, *, status: int = 200, **extra):
    backtest = get_object_or_404(
        Backtest.objects.select_related("strategy", "owner", "sweep"), pk=backtest_id
    )
    trades = selectors.backtest_trades(backtest)
    trades_page = None
    if trades is not None:
        trades_page = selectors.trades_page(
            trades, sort=request.GET.get("sort"), page=request.GET.get("page")
        )
    completed = backtest.status == Backtest.Status.COMPLETED
    return render(
        request,
        "pages/backtest_detail.html",
        {
            "backtest": backtest,
            "about": selectors.run_description(backtest),
            "completed": completed,
            "active": backtest.status in selectors.ACTIVE_BACKTEST_STATUSES,
            "metric_groups": selectors.metric_groups(backtest.metrics) if completed else [],
            "trades_page": trades_page,
            "config_json": _pretty(backtest.config),
            "benchmark_symbols": selectors.bundled_symbols() if completed else [],
            "default_benchmark": selectors.default_benchmark(backtest),
            "allocation_panels": completed and bool(backtest.report_uri),
            "allocation_without_analytics": (
                completed and not backtest.report_uri and selectors.is_allocation_run(backtest)
            ),
            **extra,
        },
        status=status,
    )


@staff_required
@require_GET
def backtest_detail(request, backtest_id: uuid.UUID):
    return _backtest_page(request, backtest_id)


@staff_required
@require_POST
def backtest_parity(request, backtest_id: uuid.UUID):
    """Run the backtest again on the other engine and show how far the two runs are apart."""
    from backtests import selectors as backtest_selectors

    backtest = get_object_or_404(Backtest, pk=backtest_id)
    try:
        parity = backtest_selectors.backtest_parity(backtest=backtest)
    except Conflict as conflict:
        return _backtest_page(request, backtest_id, parity_error=str(conflict), status=409)
    return _backtest_page(request, backtest_id, parity=parity)


@staff_required
@require_POST
def backtest_rerun(request, backtest_id: uuid.UUID):
    """Run the same inputs again as a new run (the strategy as it was, not as it is now)."""
    backtest = get_object_or_404(Backtest, pk=backtest_id)
    if backtest.strategy_id is None and backtest.source == Backtest.Source.V2:
        return _portfolio_rerun(request, backtest)
    try:
        copy, _task = services.backtest_rerun(backtest=backtest, owner=request.user)
    except Conflict as conflict:
        messages.error(request, str(conflict))
        return redirect(reverse("pages:backtest-detail", args=[backtest.id]))
    messages.success(request, "The same run is queued again; this page follows it.")
    return redirect(reverse("pages:backtest-detail", args=[copy.id]))


def _portfolio_rerun(request, backtest: Backtest):
    """A Backfolio run is its saved request (every default filled in): posted again as it is,
    synchronously, as the contract's endpoint runs it."""
    from backtests.portfolio.requests import InvalidPortfolioRequest
    from backtests.portfolio.services import portfolio_backtest_run

    try:
        outcome = portfolio_backtest_run(payload=backtest.config, user=request.user)
    except InvalidPortfolioRequest as invalid:
        messages.error(request, "The run cannot be repeated: " + "; ".join(invalid.messages))
        return redirect(reverse("pages:backtest-detail", args=[backtest.id]))
    messages.success(request, "The same Backfolio portfolio run again.")
    return redirect(reverse("pages:backtest-detail", args=[outcome.backtest.id]))


@staff_required
@require_POST
def backtest_retry(request, backtest_id: uuid.UUID):
    backtest = get_object_or_404(Backtest, pk=backtest_id)
    try:
        services.backtest_retry(backtest=backtest, owner=request.user)
    except Conflict as conflict:
        messages.error(request, str(conflict))
    else:
        messages.success(request, "The run is queued again; this page follows it.")
    return redirect(reverse("pages:backtest-detail", args=[backtest.id]))


@staff_required
@require_GET
def backtest_chart_data(request, backtest_id: uuid.UUID):
    backtest = get_object_or_404(Backtest.objects.select_related("strategy"), pk=backtest_id)
    try:
        data = selectors.backtest_chart_data(backtest, request.GET.get("benchmark") or None)
    except selectors.UnknownBenchmark as error:
        return _json({"detail": str(error)}, status=400)
    if data is None:
        return _json({"detail": "The backtest has no equity curve yet."}, status=409)
    return _json(data)


def _robustness_payload(robustness) -> dict:
    return {
        "status": robustness.status,
        "done": robustness.done,
        "total": robustness.total,
        "finished": robustness.status in ("completed", "failed"),
        "result": robustness.result if robustness.status == "completed" else None,
        "error": robustness.error or None,
    }


@staff_required
@require_POST
def backtest_robustness_start(request, backtest_id: uuid.UUID):
    """Bootstrap intervals, PSR and cost sensitivity with SPEC §13.1's defaults, through the
    same service as ``GET /api/v1/backtests/{id}/robustness``: computed at once when quick,
    else queued (the page then polls the GET below)."""
    from backtests.robustness import RobustnessParameters, robustness_get_or_start

    backtest = get_object_or_404(Backtest, pk=backtest_id)
    try:
        robustness = robustness_get_or_start(backtest=backtest, parameters=RobustnessParameters())
    except Conflict as conflict:
        return _json({"detail": str(conflict)}, status=409)
    return _json(_robustness_payload(robustness))


@staff_required
@require_GET
def backtest_robustness(request, backtest_id: uuid.UUID):
    """The robustness kept for this run's latest result with the default parameters."""
    from backtests.robustness import RobustnessParameters

    backtest = get_object_or_404(Backtest, pk=backtest_id)
    defaults = RobustnessParameters()
    robustness = backtest.robustness_results.filter(
        run_number=backtest.run_count,
        resamples=defaults.resamples,
        confidence=defaults.confidence,
        block_length=defaults.block_length,
        seed=defaults.seed,
    ).first()
    if robustness is None:
        return _json({"detail": "Robustness has not been requested for this run."}, status=404)
    return _json(_robustness_payload(robustness))


@staff_required
@require_GET
def backtest_status(request, backtest_id: uuid.UUID):
    backtest = get_object_or_404(Backtest, pk=backtest_id)
    return JsonResponse(selectors.backtest_status(backtest))


@staff_required
@require_GET
def backtest_equity_csv(request, backtest_id: uuid.UUID):
    backtest = get_object_or_404(Backtest, pk=backtest_id)
    equity = selectors.backtest_equity(backtest)
    if equity is None:
        raise Http404("The backtest has no equity curve.")
    response = _csv_response(f"equity_{backtest.id}.csv")
    writer = csv.writer(response)
    writer.writerow(["date", "equity"])
    for stamp, value in equity.items():
        writer.writerow([stamp.strftime("%Y-%m-%d"), repr(float(value))])
    return response


@staff_required
@require_GET
def backtest_trades_csv(request, backtest_id: uuid.UUID):
    backtest = get_object_or_404(Backtest, pk=backtest_id)
    trades = selectors.backtest_trades(backtest)
    if trades is None:
        raise Http404("The backtest has no trades table.")
    response = _csv_response(f"trades_{backtest.id}.csv")
    trades.to_csv(response, index=False, date_format="%Y-%m-%d")
    return response


def _csv_response(filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- compare ----------------------------------------------------------------------------------


def _compared_backtests(request) -> list[Backtest]:
    """The runs named by ``?ids=a,b,…`` in that order; 2–10 existing ids, else 400/404."""
    raw = [
        part.strip()
        for value in request.GET.getlist("ids")
        for part in value.split(",")
        if part.strip()
    ]
    ids = list(dict.fromkeys(raw))
    if not MIN_COMPARED <= len(ids) <= MAX_COMPARED:
        raise _BadCompare(f"Choose between {MIN_COMPARED} and {MAX_COMPARED} backtests to compare.")
    try:
        uuids = [uuid.UUID(value) for value in ids]
    except ValueError:
        raise _BadCompare("Backtest ids must be UUIDs.") from None
    found = Backtest.objects.select_related("strategy").in_bulk(uuids)
    missing = [str(value) for value in uuids if value not in found]
    if missing:
        raise Http404(f"Unknown backtests: {', '.join(missing)}")
    return [found[value] for value in uuids]


class _BadCompare(ValueError):
    pass


@staff_required
@require_GET
def compare(request):
    try:
        backtests = _compared_backtests(request)
    except _BadCompare as error:
        return render(request, "pages/compare.html", {"error": str(error)}, status=400)
    return render(
        request,
        "pages/compare.html",
        {
            "backtests": backtests,
            "rows": selectors.compare_table(backtests),
            "differences": selectors.config_differences(backtests),
            "ids": ",".join(str(backtest.id) for backtest in backtests),
        },
    )


@staff_required
@require_GET
def compare_chart_data(request):
    try:
        backtests = _compared_backtests(request)
    except _BadCompare as error:
        return _json({"detail": str(error)}, status=400)
    return _json(selectors.compare_chart_data(backtests))


# --- sweeps -----------------------------------------------------------------------------------


@staff_required
@require_GET
def sweep_list(request):
    return render(request, "pages/sweep_list.html", selectors.sweeps_index())


@staff_required
@require_GET
def sweep_detail(request, sweep_id: uuid.UUID):
    sweep = get_object_or_404(Sweep.objects.select_related("strategy", "owner"), pk=sweep_id)
    status = selectors.sweep_status(sweep)
    top = selectors.sweep_top_ids(status["leaderboard"])
    return render(
        request,
        "pages/sweep_detail.html",
        {
            "sweep": sweep,
            "status": status,
            "rank_metric_label": selectors.metric_label(sweep.rank_metric),
            "top_ids": ",".join(top),
            "top_count": len(top),
            "grid_json": _pretty(
                {"base_config": sweep.base_config, "param_grid": sweep.param_grid}
            ),
        },
    )


@staff_required
@require_GET
def sweep_status(request, sweep_id: uuid.UUID):
    sweep = get_object_or_404(Sweep, pk=sweep_id)
    return _json(selectors.sweep_status(sweep))


# --- strategies -------------------------------------------------------------------------------


@staff_required
@require_GET
def strategy_list(request):
    return render(request, "pages/strategy_list.html", {"strategies": selectors.strategy_list()})


def _strategy_page(request, strategy, *, status=200, **forms_):
    forms_ = {
        "backtest_form": BacktestStartForm(prefix="run", strategy=strategy),
        "sweep_form": SweepStartForm(prefix="sweep", strategy=strategy),
        "research_form": ResearchSweepStartForm(prefix="research", strategy=strategy),
        "walk_forward_form": WalkForwardStartForm(prefix="wf", strategy=strategy),
        **forms_,
    }
    if strategy.kind == Strategy.Kind.ALLOCATION:
        forms_.setdefault("portfolio_form", PortfolioRunForm(prefix="portfolio", strategy=strategy))
    return render(
        request,
        "pages/strategy_detail.html",
        {
            "strategy": strategy,
            "definition_json": _pretty(strategy.definition) if strategy.definition else "",
            "backtests": selectors.strategy_backtests(strategy),
            "sweeps": selectors.strategy_sweeps(strategy),
            "research_sweeps": strategy.research_sweeps.order_by("-created_at")[:10],
            "walk_forwards": strategy.walk_forwards.order_by("-created_at")[:10],
            **forms_,
        },
        status=status,
    )


@staff_required
@require_GET
def strategy_detail(request, strategy_id: uuid.UUID):
    strategy = get_object_or_404(Strategy.objects.select_related("owner"), pk=strategy_id)
    source = request.GET.get("from")
    if source:
        # "Clone": the backtest form filled in with an earlier run's settings, to edit and run.
        try:
            backtest = Backtest.objects.filter(strategy=strategy, pk=uuid.UUID(source)).first()
        except ValueError:
            backtest = None
        if backtest is None:
            raise Http404("No run of this strategy has that id.")
        form = BacktestStartForm(
            prefix="run", strategy=strategy, initial=BacktestStartForm.initial_from(backtest)
        )
        return _strategy_page(request, strategy, backtest_form=form)
    return _strategy_page(request, strategy)


def _add_service_errors(form, errors, path: str = "") -> None:
    """A service's field-keyed problems onto the form: a problem lands on the field its path
    names (``config.start_date`` on ``start_date``, ``config.signal_plugin_params.fast`` on the
    signal's ``fast``), anything else above the form with its path."""
    for key, value in errors.items():
        name = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict):
            _add_service_errors(form, value, name)
            continue
        messages_ = [str(message) for message in (value if isinstance(value, list) else [value])]
        field = form.field_for_path(name)
        if field is not None and field not in form.errors:
            form.add_error(field, messages_)
        else:
            where = "" if key == "non_field_errors" else f"{name}: "
            form.add_error(None, [f"{where}{message}" for message in messages_])


def _start_from_strategy_page(request, strategy, form, form_name: str, start):
    """A strategy page's start form: ``start(form)`` creates the work and answers where to go and
    what to say; an invalid form or the service's problems go back on the page, each next to the
    field it names (400), and nothing is created."""
    if not form.is_valid():
        return _strategy_page(request, strategy, status=400, **{form_name: form})
    try:
        url, message = start(form)
    except InvalidInput as error:
        _add_service_errors(form, error.errors)
        return _strategy_page(request, strategy, status=400, **{form_name: form})
    messages.success(request, message)
    return redirect(url)


@staff_required
@require_POST
def strategy_start_backtest(request, strategy_id: uuid.UUID):
    strategy = get_object_or_404(Strategy, pk=strategy_id)

    def start(form):
        data = form.cleaned_data
        backtest = services.backtest_create(
            strategy=strategy,
            engine=data["engine"],
            config=form.run_config(),
            initial_capital=data["initial_capital"],
            commission=data["commission"],
            slippage=data["slippage"],
            owner=request.user,
            source=Backtest.Source.UI,
            benchmark=data["benchmark"],
        )
        services.backtest_execute_async(backtest=backtest, owner=request.user)
        return (
            reverse("pages:backtest-detail", args=[backtest.id]),
            "The backtest is queued; this page follows it until it finishes.",
        )

    form = BacktestStartForm(request.POST, prefix="run", strategy=strategy)
    return _start_from_strategy_page(request, strategy, form, "backtest_form", start)


@staff_required
@require_POST
def strategy_start_sweep(request, strategy_id: uuid.UUID):
    strategy = get_object_or_404(Strategy, pk=strategy_id)

    def start(form):
        data = form.cleaned_data
        sweep = services.sweep_create(
            strategy=strategy,
            engine=data["engine"],
            base_config=form.base_config(),
            param_grid=form.param_grid(),
            rank_metric=data["rank_metric"],
            initial_capital=data["initial_capital"],
            commission=data["commission"],
            slippage=data["slippage"],
            owner=request.user,
        ).sweep
        return (
            reverse("pages:sweep-detail", args=[sweep.id]),
            f"The sweep of {len(sweep.param_grid)} runs is queued.",
        )

    form = SweepStartForm(request.POST, prefix="sweep", strategy=strategy)
    return _start_from_strategy_page(request, strategy, form, "sweep_form", start)


# --- research: sweeps and walk-forwards -------------------------------------------------------


@staff_required
@require_POST
def strategy_start_research_sweep(request, strategy_id: uuid.UUID):
    from backtests.research import services as research_services

    strategy = get_object_or_404(Strategy, pk=strategy_id)

    def start(form):
        data = form.cleaned_data
        grid, param_grid = form.research_grid()
        sweep = research_services.research_sweep_create(
            strategy=strategy,
            engine=data["engine"],
            base_config=form.grid_base_config(),
            rank_metric=data["rank_metric"],
            grid=grid,
            param_grid=param_grid,
            initial_capital=data["initial_capital"],
            commission=data["commission"],
            slippage=data["slippage"],
            benchmark=data["benchmark"] or None,
            owner=request.user,
        )
        return (
            reverse("pages:research_sweep_detail", args=[sweep.id]),
            f"The research sweep of {sweep.total:,} combinations is queued.",
        )

    form = ResearchSweepStartForm(request.POST, prefix="research", strategy=strategy)
    return _start_from_strategy_page(request, strategy, form, "research_form", start)


@staff_required
@require_POST
def strategy_start_walk_forward(request, strategy_id: uuid.UUID):
    from backtests.research.walk_forward import services as walk_forward_services

    strategy = get_object_or_404(Strategy, pk=strategy_id)

    def start(form):
        data = form.cleaned_data
        grid, param_grid = form.research_grid()
        walk_forward = walk_forward_services.walk_forward_create(
            strategy=strategy,
            engine=data["engine"],
            base_config=form.grid_base_config(),
            rank_metric=data["rank_metric"],
            scheme=data["scheme"],
            in_sample_months=data["in_sample_months"],
            out_of_sample_months=data["out_of_sample_months"],
            grid=grid,
            param_grid=param_grid,
            initial_capital=data["initial_capital"],
            commission=data["commission"],
            slippage=data["slippage"],
            owner=request.user,
        )
        return (
            reverse("pages:walk_forward_detail", args=[walk_forward.id]),
            "The walk-forward is queued.",
        )

    form = WalkForwardStartForm(request.POST, prefix="wf", strategy=strategy)
    return _start_from_strategy_page(request, strategy, form, "walk_forward_form", start)


def _research_status(run) -> dict:
    finished = run.status in ("completed", "failed")
    return {
        "status": run.status,
        "done": run.done,
        "total": run.total,
        "finished": finished,
        "error": run.error,
    }


@staff_required
@require_GET
def research_sweep_detail(request, sweep_id: uuid.UUID):
    sweep = get_object_or_404(ResearchSweep.objects.select_related("strategy"), pk=sweep_id)
    return render(
        request,
        "pages/research_sweep_detail.html",
        {
            "run": sweep,
            "what": "Research sweep",
            "api_url": f"/api/v1/research/sweeps/{sweep.id}",
            "status_url": reverse("pages:research_sweep_status", args=[sweep.id]),
            "chart_url": reverse("pages:research_sweep_chart_data", args=[sweep.id]),
            **selectors.research_sweep_page(sweep),
        },
    )


@staff_required
@require_GET
def research_sweep_chart_data(request, sweep_id: uuid.UUID):
    sweep = get_object_or_404(ResearchSweep, pk=sweep_id)
    return _json(
        selectors.research_sweep_chart_data(sweep, request.GET.get("x"), request.GET.get("y"))
    )


@staff_required
@require_POST
def research_sweep_compare_top(request, sweep_id: uuid.UUID):
    """The best ``count`` (2–10) finished entries made v1 backtests (each once: an entry already
    promoted is reused), then compared."""
    from backtests.research import services as research_services

    sweep = get_object_or_404(ResearchSweep, pk=sweep_id)
    detail = reverse("pages:research_sweep_detail", args=[sweep.id])
    try:
        count = int(request.POST.get("count", selectors.COMPARE_TOP))
    except ValueError:
        count = 0
    if not MIN_COMPARED <= count <= MAX_COMPARED:
        messages.error(
            request, f"Compare between {MIN_COMPARED} and {MAX_COMPARED} of the best entries."
        )
        return redirect(detail)
    try:
        backtests = research_services.research_sweep_promote_top(
            sweep=sweep, count=count, owner=request.user
        )
    except services.Conflict as conflict:
        messages.error(request, str(conflict))
        return redirect(detail)
    ids = ",".join(str(backtest.id) for backtest in backtests)
    return redirect(f"{reverse('pages:compare')}?ids={ids}")


@staff_required
@require_GET
def research_sweep_status(request, sweep_id: uuid.UUID):
    return _json(_research_status(get_object_or_404(ResearchSweep, pk=sweep_id)))


@staff_required
@require_GET
def walk_forward_detail(request, walk_forward_id: uuid.UUID):
    walk_forward = get_object_or_404(
        WalkForward.objects.select_related("strategy"), pk=walk_forward_id
    )
    return render(
        request,
        "pages/walk_forward_detail.html",
        {
            "run": walk_forward,
            "what": "Walk-forward",
            "api_url": f"/api/v1/research/walk-forward/{walk_forward.id}",
            "status_url": reverse("pages:walk_forward_status", args=[walk_forward.id]),
            "chart_url": reverse("pages:walk_forward_chart_data", args=[walk_forward.id]),
            **selectors.walk_forward_page(walk_forward),
        },
    )


@staff_required
@require_GET
def walk_forward_chart_data(request, walk_forward_id: uuid.UUID):
    return _json(
        selectors.walk_forward_chart_data(get_object_or_404(WalkForward, pk=walk_forward_id))
    )


@staff_required
@require_GET
def walk_forward_status(request, walk_forward_id: uuid.UUID):
    return _json(_research_status(get_object_or_404(WalkForward, pk=walk_forward_id)))


# --- strategy builder -------------------------------------------------------------------------


def _builder_page(request, form, *, strategy=None, problems=None, status=200):
    from backtests.pages.builder import STARTERS, catalogue

    return render(
        request,
        "pages/strategy_builder.html",
        {
            "form": form,
            "definition_text": form.definition_text(),
            "strategy": strategy,
            "catalogue": catalogue(),
            "starters": STARTERS,
            "problems": problems or [],
        },
        status=status,
    )


def _save_strategy(request, form, strategy=None):
    """Validate everything first (the definition by its paths), then write once: an invalid
    strategy is never saved, not even in part."""
    from backtests.pages.builder import definition_problems
    from strategies import services as strategy_services

    if not form.is_valid():
        return _builder_page(request, form, strategy=strategy, status=400)
    fields = form.service_fields()
    errors = strategy_services.strategy_problems(
        kind=fields["kind"], definition=fields["definition"], universe=fields["universe"]
    )
    if errors:
        if "universe" in errors:
            universe = errors["universe"]
            listed = universe.values() if isinstance(universe, dict) else [universe]
            form.add_error("universe", [message for group in listed for message in group])
        problems = definition_problems(errors)
        if problems:
            form.add_error(
                "definition",
                f"The definition has {len(problems)} problem{'s' if len(problems) > 1 else ''}; "
                "each is shown next to its field.",
            )
        return _builder_page(request, form, strategy=strategy, problems=problems, status=400)
    try:
        if strategy is None:
            strategy = strategy_services.strategy_create(owner=request.user, **fields)
            messages.success(request, f"Strategy “{strategy.name}” created.")
        else:
            strategy_services.strategy_update(strategy=strategy, data=fields)
            messages.success(request, f"Strategy “{strategy.name}” saved.")
    except InvalidInput as error:
        _add_service_errors(form, error.errors)
        return _builder_page(request, form, strategy=strategy, status=400)
    return redirect(reverse("pages:strategy-detail", args=[strategy.id]))


@staff_required
def strategy_new(request):
    from backtests.pages.builder import STARTERS, StrategyForm

    if request.method == "POST":
        return _save_strategy(request, StrategyForm(request.POST))
    kind = request.GET.get("kind")
    kind = kind if kind in Strategy.Kind.values else Strategy.Kind.SIGNAL
    form = StrategyForm(initial={"kind": kind, "definition": STARTERS[kind]})
    return _builder_page(request, form)


@staff_required
def strategy_edit(request, strategy_id: uuid.UUID):
    from backtests.pages.builder import StrategyForm

    strategy = get_object_or_404(Strategy, pk=strategy_id)
    if request.method == "POST":
        return _save_strategy(request, StrategyForm(request.POST), strategy)
    form = StrategyForm(initial=StrategyForm.initial_for(strategy))
    return _builder_page(request, form, strategy=strategy)


def _json_body(request) -> dict | None:
    try:
        body = json.loads(request.body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


@staff_required
@require_POST
def strategy_validate(request):
    """The problems of a definition, each with the path of the field it names; nothing saved."""
    from backtests.pages.builder import definition_problems
    from strategies import services as strategy_services

    body = _json_body(request)
    if body is None:
        return _json({"detail": "Send a JSON object: {kind, definition, universe}."}, status=400)
    kind = body.get("kind")
    if kind not in Strategy.Kind.values:
        return _json(
            {"detail": f"kind must be one of: {', '.join(Strategy.Kind.values)}."}, status=400
        )
    universe = body.get("universe", [])
    errors = strategy_services.strategy_problems(
        kind=kind, definition=body.get("definition"), universe=universe
    )
    return _json(
        {
            "valid": not errors,
            "problems": definition_problems(errors),
            "universe": errors.get("universe"),
        }
    )


@staff_required
@require_POST
def strategy_builtin(request):
    """The definition a built-in strategy builds with these parameters, or its problems."""
    from strategies.language import build_plugin, validate_plugin

    body = _json_body(request)
    if body is None:
        return _json({"detail": "Send a JSON object: {key, params}."}, status=400)
    problems = validate_plugin(body.get("key"), body.get("params") or {})
    if problems:
        return _json(
            {"problems": [{"path": p.path, "message": p.message} for p in problems]}, status=400
        )
    return _json({"definition": build_plugin(body["key"], body.get("params") or {})})


@staff_required
@require_POST
def strategy_start_portfolio_run(request, strategy_id: uuid.UUID):
    """An allocation strategy run through the Backfolio contract (synchronous, as its API)."""
    from backtests.portfolio.requests import InvalidPortfolioRequest
    from backtests.portfolio.services import portfolio_backtest_run

    strategy = get_object_or_404(Strategy, pk=strategy_id, kind=Strategy.Kind.ALLOCATION)
    form = PortfolioRunForm(request.POST, prefix="portfolio", strategy=strategy)
    if not form.is_valid():
        return _strategy_page(request, strategy, portfolio_form=form, status=400)
    try:
        outcome = portfolio_backtest_run(payload=form.payload(), user=request.user)
    except InvalidPortfolioRequest as invalid:
        form.add_contract_problems(invalid.messages)
        return _strategy_page(request, strategy, portfolio_form=form, status=400)
    messages.success(request, "The Backfolio portfolio run is complete.")
    return redirect(reverse("pages:backtest-detail", args=[outcome.backtest.id]))
