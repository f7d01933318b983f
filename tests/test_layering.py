"""Dependencies point one way: handlers → domain → store / bus → actors → hub → sockets, with `core/`
(the shared vocabulary) and `config/` underneath everything. Read from the source, so a new import
that points back up fails here instead of in a review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "core", "actors", "schemas", "server", "domain", "handlers")
# Assemble every layer; nothing but the CLI imports them (server/replay.py builds the app, without
# HTTP, to run `eta-replay` through the real workflows and queues).
COMPOSITION_ROOT = {"server/app.py", "server/__main__.py", "server/replay.py"}

# module (or package) → what it may import from this project
ALLOWED = {
    "config": {"config"},
    "core": {"core", "config"},
    "actors": {"actors", "core"},
    "schemas": {"schemas", "core"},
    "server": {"server", "core", "config", "actors"},   # store, bus (delivers to actors), auth, logs
    "domain": {"domain", "core", "actors", "server"},
    "handlers": {"handlers", "domain", "schemas", "core", "server", "actors"},  # ws: the hub's sockets
}


def project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {name for name in names if name.split(".")[0] in PACKAGES}


def modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative not in COMPOSITION_ROOT:
                yield relative, package, path


@pytest.mark.parametrize("relative,package,path", list(modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_no_import_points_back_up(relative, package, path):
    offending = {name for name in project_imports(path) if name.split(".")[0] not in ALLOWED[package]}
    if package == "server":  # the infrastructure under the domain never reaches up into it
        offending |= {name for name in project_imports(path) if name.startswith(("server.app", "server.__main__"))}
    assert not offending, f"{relative} imports {sorted(offending)}"


def test_nothing_imports_the_composition_root():
    for relative, _, path in modules():
        assert not {n for n in project_imports(path) if n in ("server.app", "server.__main__")}, relative


def test_the_rules_have_one_home():
    """The waiting statuses, the default consultation length and the access relation are spelled once."""
    spelled = {"WAITING = frozenset": 0, "DEFAULT_AVG_CONSULT_MINUTES = ": 0, "def relation(": 0}
    for _, _, path in modules():
        text = path.read_text()
        for needle in spelled:
            spelled[needle] += text.count(needle)
    assert spelled == {needle: 1 for needle in spelled}
