"""The package's shape, read from its source with ast (no imports, no ROS): no import cycles between its
modules, the ROS-free core in layers that import only downwards, no core module over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ml_model_service"
NAME = PACKAGE.name
CORE = f"{NAME}.core"
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


def module_name(path: Path) -> str:
    parts = [NAME, *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


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


def layer(module: str) -> int | None:
    for index, members in enumerate(LAYERS):
        if any(module == m or (m != CORE and module.startswith(m + ".")) for m in members):
            return index
    return None


def test_the_graph_sees_the_package():
    assert f"{CORE}.reading.vision" in MODULES and f"{NAME}.ros.vision_node" in MODULES
    assert f"{CORE}.reading.decoders.registry" in GRAPH[f"{CORE}.reading.vision"]  # from .x.y import name
    assert f"{NAME}.ros.conversions" in GRAPH[f"{NAME}.ros.vision.frame"]  # from .. import module
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
