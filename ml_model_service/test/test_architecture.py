"""The repository's shape, read from its source with ast (no imports, no ROS): no import cycles between the
modules of the product and of the development package, the ROS-free core in layers that import only downwards,
no core module over 400 lines, a development package in layers that the product never imports, and no module
that edits sys.path."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "ml_model_service" / "ml_model_service"
NAME = PACKAGE.name
CORE = f"{NAME}.core"
DEV_PACKAGE = REPO / "dev" / "ml_model_service_dev"
DEV = DEV_PACKAGE.name
#: The development package's layers, lowest first: a module imports only from its layer or those before.
DEV_LAYERS = [
    {f"{DEV}", f"{DEV}.paths", f"{DEV}.system"},
    {f"{DEV}.harness", f"{DEV}.exporters"},
    {f"{DEV}.bench", f"{DEV}.robustness", f"{DEV}.demo"},
]
#: The core's layers, lowest first (see core/__init__.py): a module imports only from its layer or those before.
LAYERS = [
    {f"{CORE}", f"{CORE}.metadata", f"{CORE}.tensors", f"{CORE}.text"},
    {f"{CORE}.runtimes"},
    {f"{CORE}.loading"},
    {f"{CORE}.reading"},
    {f"{CORE}.frames", f"{CORE}.scenes"},
    {f"{CORE}.settings"},
]
MAX_CORE_LINES = 400
#: ROS packages that are not message packages (those end in _msgs, _srvs or _interfaces).
ROS_PACKAGES = {
    "rclpy",
    "rcl_interfaces",
    "rosidl_runtime_py",
    "tf2_ros",
    "launch",
    "launch_ros",
    "ament_index_python",
    "message_filters",
    "builtin_interfaces",
}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = [package.name, *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p, root): p for root in (PACKAGE, DEV_PACKAGE) for p in sorted(root.rglob("*.py"))}


def imported(module: str, path: Path) -> list[tuple[str, int]]:
    """(absolute module name, line) of every import in the file, those inside functions included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.append((source, node.lineno))
            found += [(f"{source}.{alias.name}", node.lineno) for alias in node.names]  # `from pkg import module`
    return found


def internal_imports(module: str) -> set[str]:
    """The package's modules `module` imports (for `import a.b.c`, the deepest of a, a.b, a.b.c that is one)."""
    targets = set()
    for name, _ in imported(module, MODULES[module]):
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module:
            targets.add(name)
    return targets


GRAPH = {module: internal_imports(module) for module in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def layer(module: str, layers: list[set[str]] | None = None) -> int | None:
    roots = {CORE, DEV}
    for index, members in enumerate(LAYERS if layers is None else layers):
        if any(module == m or (m not in roots and module.startswith(m + ".")) for m in members):
            return index
    return None


def test_the_graph_sees_the_package():
    assert f"{CORE}.reading.vision" in MODULES and f"{NAME}.ros.vision_node" in MODULES
    assert f"{CORE}.reading.decoders.registry" in GRAPH[f"{CORE}.reading.vision"]  # from .x.y import name
    assert f"{NAME}.ros.conversions" in GRAPH[f"{NAME}.ros.vision.frame"]  # from .. import module
    assert f"{DEV}.harness.photos" in GRAPH[f"{DEV}.bench.common"] and f"{DEV}.robustness.graph" in MODULES
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycles():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(CORE)))
def test_core_layers_import_only_downwards(module):
    own = layer(module)
    assert own is not None, f"{module} belongs to no layer of core (add it to LAYERS and core/__init__.py)"
    for target in GRAPH[module]:
        assert target.startswith(CORE + ".") or target == CORE, f"{module} imports {target}, outside core"
        assert layer(target) <= own, f"{module} (layer {own}) imports {target} (layer {layer(target)}), a layer above"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(CORE)))
def test_core_is_ros_free(module):
    for name, line in imported(module, MODULES[module]):
        top = name.split(".")[0]
        is_ros = top in ROS_PACKAGES or top.endswith(("_msgs", "_srvs", "_interfaces"))
        assert not is_ros, f"{MODULES[module].relative_to(PACKAGE)}:{line} imports {name}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_modules_are_short(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_CORE_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines (at most {MAX_CORE_LINES})"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(DEV)))
def test_development_layers_import_only_downwards(module):
    own = layer(module, DEV_LAYERS)
    assert own is not None, f"{module} belongs to no layer of the development package (add it to DEV_LAYERS)"
    for target in GRAPH[module]:
        if target.startswith(DEV):
            assert layer(target, DEV_LAYERS) <= own, f"{module} imports {target}, a layer above"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(NAME + ".") or m == NAME))
def test_the_product_never_imports_the_development_package(module):
    assert not [name for name, _ in imported(module, MODULES[module]) if name.split(".")[0] == DEV]


def _is_sys_path(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys"


def sys_path_edits(tree: ast.AST) -> list[int]:
    """Lines that change sys.path: sys.path.insert/append/extend(...), sys.path[...] = or sys.path (+)= ..."""
    lines = []
    for node in ast.walk(tree):
        call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _is_sys_path(node.func.value)
        if call and node.func.attr in ("insert", "append", "extend", "__setitem__"):
            lines.append(node.lineno)
        targets = node.targets if isinstance(node, ast.Assign) else []
        targets += [node.target] if isinstance(node, ast.AugAssign) else []
        for target in targets:
            if _is_sys_path(target) or (isinstance(target, ast.Subscript) and _is_sys_path(target.value)):
                lines.append(node.lineno)
    return sorted(lines)


def test_no_module_edits_sys_path():
    """Packages are found by installation and PYTHONPATH (env.sh), never by a module inserting a folder."""
    assert sys_path_edits(ast.parse("import sys\nsys.path.insert(0, 'x')\nsys.path[:0] = ['y']")) == [2, 3]
    skip = {"build", "install", "install-jazzy", "log", "third_party", "out"}
    found = []
    for path in sorted(REPO.rglob("*.py")):
        parts = path.relative_to(REPO).parts
        if parts[0] in skip or parts[0].startswith("."):
            continue
        found += [f"{path.relative_to(REPO)}:{line}" for line in sys_path_edits(ast.parse(path.read_text(), str(path)))]
    assert not found, f"sys.path edited in: {found}"


TESTS = Path(__file__).resolve().parent
#: Modules with no behaviour of their own to test by name, and where what they hold is tested instead.
WITHOUT_OWN_TEST = {
    "core/reading/decoders/base.py": "constants and the decoder base class; every decoder's test uses them",
    "core/settings/decoder_table.py": "rows of the parameter table: core/settings/test_tables.py, test_typed.py",
    "core/settings/model_table.py": "rows of the parameter table: core/settings/test_tables.py, test_typed.py",
}


def expected_tests(module: Path) -> list[Path]:
    """Where the test of a product module is found: the same folders under test/, `test_<name>.py`, or
    `test_<folder>_<name>.py` where two modules share a name."""
    rel = module.relative_to(PACKAGE)
    folder = TESTS.joinpath(*rel.parts[:-1])
    return [folder / f"test_{rel.stem}.py", folder / f"test_{rel.parent.name}_{rel.stem}.py"]


def test_every_module_has_a_test_named_after_it():
    """A change to a module has a test that names it: test/<its folders>/test_<its name>.py, next to the
    end-to-end tests."""
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE))
        if path.name in ("__init__.py", "__main__.py") or rel in WITHOUT_OWN_TEST:
            continue
        if not any(p.exists() for p in expected_tests(path)):
            missing.append(f"{rel} (expected {expected_tests(path)[0].relative_to(TESTS)})")
    assert not missing, "modules without a test of their own: " + ", ".join(missing)
    stale = [rel for rel in WITHOUT_OWN_TEST if not (PACKAGE / rel).exists()]
    assert not stale, f"excepted modules that no longer exist: {stale}"
