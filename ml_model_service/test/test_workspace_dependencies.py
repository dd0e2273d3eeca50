"""package.xml names a rosdep key for everything the package and its tests import, so that `rosdep install
--from-paths src --ignore-src` installs what they need; keys rosdistro lacks are defined in rosdep.yaml."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import yaml
from catkin_pkg.package import parse_package

PKG = Path(__file__).resolve().parents[1]
REPO = PKG.parent

# Python module → rosdep key. ROS packages are keys by their own name; system/pip keys as in rosdistro's
# rosdep/python.yaml (ROSDISTRO_KEYS, each checked there) or, where rosdistro has none, rosdep.yaml.
MODULE_KEYS = {
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "skimage": "python3-skimage",
    "PIL": "python3-pil",
    "pytest": "python3-pytest",
    "onnxruntime": "python3-onnxruntime-pip",
    "open3d": "python3-open3d-pip",
    "onnx": "python3-onnx-pip",
    "ai_edge_litert": "python3-ai-edge-litert-pip",
    "tflite_runtime": "python3-ai-edge-litert-pip",  # the older LiteRT wheel, tried when ai_edge_litert is absent
    "catkin_pkg": "python3-catkin-pkg-modules",
    "norfair": "python3-norfair-enough-pip",
    "tritonclient": "python3-tritonclient-pip",
    "openvino": "python3-openvino-pip",
    "google": "python3-protobuf",  # google.protobuf
}
# test helpers that run under their own interpreter, not the package's (their imports are not the package's)
OWN_ENVIRONMENT = {
    "kserve_server.py": "build/kserve-venv (scripts/requirements-kserve.txt: kserve's pins clash with the package's)",
    "make_export.py": "build/exporters-venv (scripts/requirements-exporters.txt: the exporters, test-only, ~6 GB)",
    "make_segmentation.py": "build/exporters-venv (torchvision's and transformers' segmenters, test-only)",
    "make_hf_detection.py": "build/hf-exporters-venv (optimum's exporter and transformers' detectors, test-only)",
    "make_rfdetr_yolox.py": "build/rfdetr-yolox-venv (RF-DETR's and YOLOX's own exports, test-only)",
}
ROSDISTRO_KEYS = {
    "python3-numpy",
    "python3-pil",
    "python3-opencv",
    "python3-yaml",
    "python3-skimage",
    "python3-pytest",
    "python3-onnxruntime-pip",
    "python3-open3d-pip",
    "python3-catkin-pkg-modules",
    "python3-protobuf",
}
ROS_PACKAGES = {
    "rclpy",
    "rcl_interfaces",
    "std_msgs",
    "sensor_msgs",
    "geometry_msgs",
    "diagnostic_msgs",
    "vision_msgs",
    "visualization_msgs",
    "ml_model_service_interfaces",
    "launch",
    "launch_ros",
    "ament_index_python",
    "builtin_interfaces",
    "launch_testing",
    "launch_testing_ros",
    "launch_pytest",
    "tf2_ros",
    "rosgraph_msgs",
    "lifecycle_msgs",
}
# `ros2 VERB` in the tests → the package that provides the verb
CLI_VERBS = {
    "launch": "ros2launch",
    "param": "ros2param",
    "service": "ros2service",
    "topic": "ros2topic",
    "node": "ros2node",
    "run": "ros2run",
    "lifecycle": "ros2lifecycle",
}


def imports(paths: list[Path]) -> dict[str, set[str]]:
    """Top-level absolute imports → the files importing them."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(REPO)))
    return found


def unknown_and_keys(found: dict[str, set[str]], local: set[str]) -> tuple[dict, dict[str, set[str]]]:
    unknown, keys = {}, {}
    for module, where in found.items():
        if (
            module in sys.stdlib_module_names
            or module in local
            or module in ("ml_model_service", "ml_model_service_dev")
        ):
            continue
        key = module if module in ROS_PACKAGES else MODULE_KEYS.get(module)
        if key is None:
            unknown[module] = sorted(where)
        else:
            keys.setdefault(key, set()).update(where)
    return unknown, keys


def package_keys() -> tuple[set[str], set[str]]:
    pkg = parse_package(str(PKG / "package.xml"))
    run = {d.name for d in pkg.exec_depends + pkg.build_export_depends + pkg.build_depends}
    return run, run | {d.name for d in pkg.test_depends}


def test_every_runtime_import_has_an_exec_depend():
    files = [*(PKG / "ml_model_service").rglob("*.py"), *(PKG / "launch").glob("*.py")]
    unknown, keys = unknown_and_keys(imports(files), set())
    assert not unknown, f"imports without a known rosdep key (add to package.xml and MODULE_KEYS): {unknown}"
    run, _ = package_keys()
    missing = {k: sorted(v)[:3] for k, v in keys.items() if k not in run}
    assert not missing, f"package.xml lacks <exec_depend> for: {missing}"


def test_every_test_import_and_ros2_verb_has_a_depend():
    tests = sorted((PKG / "test").rglob("*.py"))
    local = {p.stem for p in tests} | {p.parent.name for p in tests if p.name == "__init__.py"}  # modules, packages
    unknown, keys = unknown_and_keys(imports([t for t in tests if t.name not in OWN_ENVIRONMENT]), local)
    assert not unknown, f"test imports without a known rosdep key: {unknown}"
    _, everything = package_keys()
    missing = {k: sorted(v)[:3] for k, v in keys.items() if k not in everything}
    assert not missing, f"package.xml lacks <test_depend> for: {missing}"
    text = "\n".join(p.read_text() for p in tests)
    verbs = set(re.findall(r'ros2\("(\w+)"', text)) | set(re.findall(r'Background\([^,]+, "(\w+)"', text))
    verbs |= {"param"} if re.search(r'\bparam\("', text) else set()
    verbs |= {"launch"} if "launcher(" in text else set()
    assert {"launch", "param", "service", "topic", "node"} <= verbs  # the scan sees what the tests run
    lacking = sorted(CLI_VERBS[v] for v in verbs if v in CLI_VERBS and CLI_VERBS[v] not in everything)
    assert not lacking, f"package.xml lacks <test_depend> for the ros2 verbs the tests run: {lacking}"


def test_keys_rosdistro_lacks_are_defined_in_rosdep_yaml():
    defined = yaml.safe_load((PKG / "rosdep.yaml").read_text())
    _, everything = package_keys()
    ros = ROS_PACKAGES | {"ros2cli", *CLI_VERBS.values()}
    for key in sorted(everything - ros - ROSDISTRO_KEYS):
        assert key in defined, f"{key}: neither a rosdistro key nor defined in rosdep.yaml"
        for distro in ("ubuntu", "debian"):
            assert defined[key][distro]["pip"]["packages"], f"{key}: no pip package for {distro}"
    # the pip packages are the ones the project pins
    pinned = {
        re.split(r"[=<>\[ ;]", line.strip())[0].lower()
        for req in (REPO / "scripts").glob("requirements*.txt")
        if req.name != "requirements-kserve.txt"
        for line in req.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for key, rules in defined.items():
        names = {re.split(r"[\[=<>]", p)[0].lower() for p in rules["ubuntu"]["pip"]["packages"]}
        assert names <= pinned, f"{key}: not pinned in scripts/requirements*.txt"


def test_interfaces_package_depends_on_every_message_package_it_uses():
    root = REPO / "ml_model_service_interfaces"
    used = set()
    for path in [*root.glob("msg/*.msg"), *root.glob("srv/*.srv")]:
        used |= set(re.findall(r"^\s*([a-z_]+_msgs)/", path.read_text(), re.MULTILINE))
    pkg = parse_package(str(root / "package.xml"))
    build = {d.name for d in pkg.build_depends}
    run = {d.name for d in pkg.exec_depends + pkg.build_export_depends}
    assert used and used <= build and used <= run, (used, build, run)
    assert "rosidl_default_generators" in {d.name for d in pkg.buildtool_depends}
    assert "rosidl_default_runtime" in run
    assert "rosidl_interface_packages" in {g.name for g in pkg.member_of_groups}
