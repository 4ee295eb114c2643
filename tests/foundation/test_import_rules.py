"""The import rules of docs/ARCHITECTURE.md, read from the source (every import statement,
including those inside functions: a deferred import is still a dependency).

- The jobs (``backtests.jobs``, the research jobs) never import an actor module (``tasks``);
  the actors import the jobs, and a job that sends a message names its actor.
- No import cycle between the jobs and the actors, nor anywhere else in the project.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("backfolio", "backtests", "marketdata", "metrics", "strategies")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                modules[module_name(path)] = path
    return modules


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules that ``path`` imports (``from a import b`` counts ``a.b`` when that
    is a module, else ``a``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imported_modules(path, name, known) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        work = [(node, iter(sorted(graph[node])))]
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[current] = min(low[current], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[current])
            if low[current] == index[current]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == current:
                        break
                if len(component) > 1:
                    found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def is_actor_module(name: str) -> bool:
    return name.rpartition(".")[2] == "tasks"


def is_job_module(name: str) -> bool:
    """The jobs, and the robustness computation (a job its actor runs)."""
    return (
        name.startswith("backtests.jobs")
        or name.rpartition(".")[2] == "jobs"
        or name == "backtests.robustness"
    )


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # ``backfolio.workers`` imports the engines' warm-up only inside its functions.
    assert "backtests.engines.warmup" in graph["backfolio.workers"]
    assert {"backtests.jobs.runner", "backtests.jobs.outcomes"} <= graph["backtests.jobs.sweeps"]


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [{"a", "b", "c"}]


def test_jobs_never_import_an_actor_module():
    graph = import_graph()
    offenders = {
        job: sorted(filter(is_actor_module, imported))
        for job, imported in graph.items()
        if is_job_module(job) and any(map(is_actor_module, imported))
    }
    assert offenders == {}


def test_no_cycle_joins_a_job_and_an_actor():
    joined = [
        sorted(component)
        for component in cycles(import_graph())
        if any(map(is_job_module, component)) or any(map(is_actor_module, component))
    ]
    assert joined == []


def test_no_module_of_the_project_is_in_an_import_cycle():
    assert [sorted(component) for component in cycles(import_graph())] == []


def test_every_actor_a_job_names_is_registered():
    """``messages.send("name", …)`` names an actor; a misspelt name would fail only at run time."""
    import dramatiq

    named = set()
    for path in project_modules().values():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "send"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "messages"
            ):
                assert isinstance(node.args[0], ast.Constant), f"{path}: name the actor"
                named.add(node.args[0].value)
    assert {"execute_backtest", "run_research_chunk", "compute_robustness"} <= named
    assert named <= set(dramatiq.get_broker().actors)


def test_the_strategies_app_never_imports_the_backtests_app():
    """``backtests`` builds on ``strategies``; the errors both apps' services raise live in
    ``backfolio.common.errors``, the serializer helpers in ``backfolio.common.serializers`` and
    the v1 contract's base views, paging and error shape in ``backfolio.common.v1``."""
    offenders = {
        name: sorted(target for target in imported if target.split(".")[0] == "backtests")
        for name, imported in import_graph().items()
        if name.split(".")[0] == "strategies"
    }
    assert {name: targets for name, targets in offenders.items() if targets} == {}


PURE_CORE = (
    "strategies.language",
    "backtests.engines",
    "backtests.run_config",
    "backtests.pipeline",
    "backtests.research.grid",
    "backtests.research.runner",
    "backtests.research.walk_forward.core",
    "metrics.calculations",
    "metrics.analytics",
    "metrics.research",
    "marketdata.store",
    "marketdata.sources",
)
FRAMEWORKS = ("django", "rest_framework", "dramatiq", "django_dramatiq")


def imports_a_framework(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        if any(name.split(".")[0] in FRAMEWORKS for name in names):
            return True
    return False


def test_the_pure_core_and_all_it_imports_use_no_django():
    modules = project_modules()
    graph = import_graph()
    seen: set[str] = set()
    todo = [name for name in graph if name.startswith(PURE_CORE)]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    assert {"backtests.pipeline", "strategies.language.compiler", "metrics.jsonsafe"} <= seen
    assert sorted(name for name in seen if imports_a_framework(modules[name])) == []
