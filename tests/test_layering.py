"""The layering of DESIGN.md, checked on every module against ``src/nefos/layers.toml``.

The rules file names the parts, the arrows each may take, the HTTP edge modules, which
third-party packages only some modules may use, and the import cycles still allowed.
Imports are read from the source (AST), at any depth: one inside a function is an arrow
too. Only ``if TYPE_CHECKING:`` blocks are left out, as they run nowhere.
"""

from __future__ import annotations

import ast
import fnmatch
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
RULES = SRC / "nefos" / "layers.toml"
DOC = ROOT / "docs" / "architecture.md"


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the dotted name imported, as written (absolute)
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((SRC / "nefos").rglob("*.py"))}


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    for child in ast.iter_child_nodes(node):
        if _type_checking(child):
            for other in child.orelse:  # type: ignore[attr-defined]
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def imports_of(module: str, path: Path, source: str | None = None) -> list[Import]:
    found = []
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in _walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package[: len(package) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            for alias in node.names:
                # `from nefos.core import http` imports the module nefos.core.http
                name = f"{base}.{alias.name}"
                found.append(Import(module, name if name in modules() else base, node.lineno))
    return found


def owner(name: str) -> str | None:
    """The nefos module a dotted name lives in (a module, or a name inside one)."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def rules() -> dict:
    return tomllib.loads(RULES.read_text())


def part_of(module: str) -> str:
    best, length = "", -1
    for part, spec in rules()["parts"].items():
        for prefix in spec["modules"]:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = part, len(prefix)
    assert best, f"{module} is in no part of {RULES.name}"
    return best


def matches(module: str, patterns: list[str]) -> bool:
    expanded = []
    for pattern in patterns:
        expanded += rules()["edge"]["modules"] if pattern == "@edge" else [pattern]
    return any(fnmatch.fnmatchcase(module, pattern) for pattern in expanded)


def is_edge(module: str) -> bool:
    return matches(module, ["@edge"])


@cache
def graph() -> dict[str, set[str]]:
    """Every nefos module and the nefos modules it imports."""
    edges: dict[str, set[str]] = {}
    for module, path in modules().items():
        targets = {owner(i.target) for i in imports_of(module, path)}
        edges[module] = {t for t in targets if t and t != module}
    return edges


def all_imports() -> Iterator[Import]:
    for module, path in modules().items():
        yield from imports_of(module, path)


# -- the rules file itself ----------------------------------------------------------------


def test_the_rules_name_real_parts_and_every_module_has_one():
    parts = rules()["parts"]
    for part, spec in parts.items():
        assert set(spec["uses"]) <= set(parts), f"{part} uses an undeclared part"
        for prefix in spec["modules"]:
            assert owner(prefix) == prefix, f"{part}: no module {prefix}"
    for module in modules():
        part = part_of(module)
        # the catch-all part holds the package alone: new packages are declared
        assert part != "package" or module == "nefos", f"{module}: declare its part"
    assert len(modules()) > 100  # the walk found the tree


# -- the arrows ---------------------------------------------------------------------------


def forbidden_arrows() -> list[str]:
    parts = rules()["parts"]
    found = []
    for imp in all_imports():
        target = owner(imp.target)
        if target is None:
            continue
        source_part, target_part = part_of(imp.module), part_of(target)
        if source_part != target_part and target_part not in parts[source_part]["uses"]:
            arrow = f"({source_part} -> {target_part})"
            found.append(f"{imp.module}:{imp.line} imports {target} {arrow}")
    return found


def test_no_part_imports_a_part_it_may_not_use():
    assert forbidden_arrows() == []


def test_core_imports_no_service():
    services = {part for part in rules()["parts"] if part not in ("core", "blocks")}
    for module, targets in graph().items():
        if part_of(module) == "core":
            assert not [t for t in targets if part_of(t) in services], module


def test_only_the_composition_root_imports_an_api_module():
    allowed = set(rules()["edge"]["imported_by"])
    for imp in all_imports():
        target = owner(imp.target)
        if target is None or not is_edge(target) or target == imp.module:
            continue
        source_part = part_of(imp.module)
        same_api = is_edge(imp.module) and source_part == part_of(target)
        assert source_part in allowed or same_api, f"{imp.module}:{imp.line} imports {target}"


def test_third_party_packages_stay_where_the_rules_put_them():
    for rule in rules()["third_party"]:
        for imp in all_imports():
            if imp.target.split(".")[0] in rule["packages"]:
                where = f"{imp.module}:{imp.line} imports {imp.target}: {rule['why']}"
                assert matches(imp.module, rule["only_in"]), where


def test_domain_modules_do_not_speak_http():
    # The rule above, seen from the other side: the services' domain modules exist and
    # are checked (a rules file that let everything through would fail here).
    http = next(r for r in rules()["third_party"] if "fastapi" in r["packages"])
    domain = [m for m in modules() if m.endswith((".service", ".models"))]
    assert len(domain) >= 6
    assert not [m for m in domain if matches(m, http["only_in"])]


# -- cycles -------------------------------------------------------------------------------


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of an import graph with more than one module
    (Tarjan's algorithm, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def test_no_import_cycles_but_the_known_ones():
    known = sorted(sorted(cycle) for cycle in rules()["cycles"]["known"])
    assert cycles(graph()) == known


def test_the_cycle_finder_finds_a_cycle():
    # the circle this layout removed (stores opened rados, which imports stores), put back
    edges = {module: set(targets) for module, targets in graph().items()}
    edges["nefos.storage.stores"].add("nefos.storage.rados")
    pair = {"nefos.storage.rados", "nefos.storage.stores"}
    assert any(pair <= set(cycle) for cycle in cycles(edges))


# -- the drawing --------------------------------------------------------------------------


def layout_rows() -> list[str]:
    """The rules file as the table docs/architecture.md shows."""
    rows = ["| part | modules | may import | what it is |", "|---|---|---|---|"]
    for part, spec in rules()["parts"].items():
        names = ", ".join(f"`{m}`" for m in spec["modules"])
        uses = ", ".join(spec["uses"]) or "nothing"
        rows.append(f"| {part} | {names} | {uses} | {spec['about']} |")
    return rows


def test_the_architecture_page_draws_the_rules_file():
    page = DOC.read_text()
    missing = [row for row in layout_rows() if row not in page.splitlines()]
    assert not missing, "docs/architecture.md is out of date with layers.toml:\n" + "\n".join(
        layout_rows()
    )


# -- private names and server state -------------------------------------------------------


def private_names(module: str, path: Path, source: str | None = None) -> list[str]:
    """``from nefos.x import _y`` and ``mod._y`` on an imported nefos module, in one
    module: a name with a leading underscore is its module's own; another module that
    needs it needs a public name."""
    found = []
    tree = ast.parse(path.read_text() if source is None else source)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    bound: dict[str, str] = {}  # a local name -> the nefos module it is
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules() and alias.asname:
                    bound[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package[: len(package) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            for alias in node.names:
                local = alias.asname or alias.name
                if f"{base}.{alias.name}" in modules():
                    bound[local] = f"{base}.{alias.name}"
                elif (
                    base in modules()
                    and base != module
                    and alias.name.startswith("_")
                    and not alias.name.startswith("__")
                ):
                    found.append(f"{module}:{node.lineno} imports {base}.{alias.name}")
    for node in _walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and bound.get(node.value.id, module) != module
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{module}:{node.lineno} uses {bound[node.value.id]}.{node.attr}")
    return found


def test_no_private_name_is_imported_from_another_module():
    found = [f for module, path in modules().items() for f in private_names(module, path)]
    assert found == []


def test_the_private_name_check_sees_both_forms():
    # what reconcile once did: take another module's private helpers
    probe = "nefos.compute.probe"
    path = SRC / "nefos" / "compute" / "probe.py"  # never written: the source is given
    source = "from nefos.compute import transitions\nfrom nefos.compute.views import _x\n"
    source += "transitions._hidden(1)\n"
    assert private_names(probe, path, source) == [
        "nefos.compute.probe:2 imports nefos.compute.views._x",
        "nefos.compute.probe:3 uses nefos.compute.transitions._hidden",
    ]


# Server columns the backend's outcomes move (compute.transitions' table).
SERVER_STATE = {"operstate", "task", "task_job_id", "job_status", "job_opcode", "backendtime"}


def server_state_writes() -> list[str]:
    """Assignments to a server's state columns (``x.operstate = ...``, not ``self.``)
    outside nefos.compute.transitions."""
    found = []
    for module, path in modules().items():
        if module == "nefos.compute.transitions" or not module.startswith("nefos.compute"):
            continue
        for node in _walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                for each in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if (
                        isinstance(each, ast.Attribute)
                        and each.attr in SERVER_STATE
                        and not (isinstance(each.value, ast.Name) and each.value.id == "self")
                    ):
                        found.append(f"{module}:{node.lineno} sets .{each.attr}")
    return found


def test_server_state_moves_in_transitions_only():
    assert server_state_writes() == []
