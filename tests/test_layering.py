"""The layering of DESIGN.md, checked: domain code never speaks HTTP."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "nefos"
HTTP = {"fastapi", "starlette"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


# The parts nefos.storage.service is made of are domain code too.
STORAGE_PARTS = (
    "records.py",
    "statements.py",
    "nodes.py",
    "reads.py",
    "listings.py",
    "permissions.py",
    "commits.py",
    "writes.py",
    "pending.py",
    "maintenance.py",
)


def domain_modules() -> list[Path]:
    names = ("service.py", "models.py")
    found = [p for p in SRC.rglob("*.py") if p.name in names]
    found += [SRC / "storage" / name for name in STORAGE_PARTS]
    found += [SRC / "core" / name for name in ("db.py", "bus.py", "config.py", "errors.py")]
    return found


def test_services_and_models_do_not_speak_http():
    modules = domain_modules()
    assert len(modules) >= 6
    for module in modules:
        assert not imported_roots(module) & HTTP, module


def test_only_the_app_imports_api_modules():
    for path in SRC.rglob("*.py"):
        if path == SRC / "core" / "app.py":
            continue
        source = path.read_text()
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.endswith(".api"), path
                assert not any(alias.name == "api" for alias in node.names), path


def test_the_client_imports_no_server_module():
    """``nf`` and the library run where no server is installed: of nefos they use only
    their own package and the pure modules they share with it (the block model, units)."""
    shared = {"nefos.units", "nefos.storage.blocks"}
    for path in (SRC / "client").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name == "nefos" or name.startswith("nefos."):
                    assert name.startswith("nefos.client") or name in shared, (path, name)
