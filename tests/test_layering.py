"""Every import points down the layers of the design, with no exemption, and no file reaches itself
through others. Read from the source, so a new import that points back up fails here instead of in a
review.

    server/    the composition root: assembles everything, imported by nothing
    live/      socket transport (`/ws`, the hub, outboxes, frame writing)
    handlers/  HTTP edges: parse, one domain call, render
    domain/    workflows, who may call them, the publish step
    infra/     adapters to the real engines: store, bus, hashing, limits, revocations, HTTP edge, logs
    actors/    the queue projection, the estimator, learning: no I/O of their own
    schemas/   request validation and answer shapes
    config/    settings, read once at start
    core/      the shared vocabulary: values, errors, limits, access, metrics
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "config", "schemas", "actors", "infra", "domain", "handlers", "live", "server")

# package → the packages it may import (besides itself)
ALLOWED = {
    "core": set(),
    "config": {"core"},
    "schemas": {"core"},
    "actors": {"core"},
    "infra": {"core", "config", "actors"},                 # the bus delivers to the actors
    "domain": {"core", "config", "actors", "infra"},
    "handlers": {"core", "schemas", "domain", "infra"},
    "live": {"core", "schemas", "actors", "domain", "infra", "handlers"},   # a refused upgrade answers as the API does
    "server": set(PACKAGES),
}
NO_TORNADO = ("core", "config", "schemas", "actors", "domain")


def source_files():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), package, path


def module_name(relative: str) -> str:
    name = relative[:-3].replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def imported_names(path: Path) -> set[str]:
    """Every module an `import` or `from … import …` names, anywhere in the file (functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


FILES = {module_name(relative): (package, path) for relative, package, path in source_files()}


def project_imports(path: Path) -> set[str]:
    """The project's modules this file imports (`from core import metrics` names `core.metrics`)."""
    return {name for name in imported_names(path) if name in FILES}


@pytest.mark.parametrize("module", sorted(FILES))
def test_no_import_points_back_up(module):
    package, path = FILES[module]
    allowed = ALLOWED[package] | {package}
    offending = sorted(name for name in project_imports(path) if FILES[name][0] not in allowed)
    assert not offending, f"{module} imports {offending}"


@pytest.mark.parametrize("module", sorted(m for m in FILES if FILES[m][0] in NO_TORNADO))
def test_the_inner_layers_know_nothing_of_tornado(module):
    _, path = FILES[module]
    assert not {n for n in imported_names(path) if n.split(".")[0] == "tornado"}, module


def test_no_module_reaches_itself_through_others():
    graph = {module: project_imports(path) - {module} for module, (_, path) in FILES.items()}
    cycles, state = [], {}

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" → ".join(c) for c in cycles)


def test_nothing_imports_the_composition_root():
    for module, (package, path) in FILES.items():
        if package != "server":
            assert not {n for n in project_imports(path) if FILES[n][0] == "server"}, module


def test_the_checks_see_every_package():
    """A new top-level package must be given its place in the layers, not slip past them."""
    found = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert found == set(PACKAGES)


def test_the_rules_have_one_home():
    """The waiting statuses, the default consultation length and the access relation are spelled once."""
    spelled = {"WAITING = frozenset": 0, "DEFAULT_AVG_CONSULT_MINUTES = ": 0, "def relation(": 0}
    for _, _, path in source_files():
        text = path.read_text()
        for needle in spelled:
            spelled[needle] += text.count(needle)
    assert spelled == {needle: 1 for needle in spelled}
