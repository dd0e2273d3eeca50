"""A ROS user's workspace, built and tested as ../shared/tools/ros2-cli/README.md shows: this repository in
src/ next to the real vision_msgs (the Kilted release, extra/vision_msgs there), `colcon build`, then
`colcon test` of a fast subset of the package's tests (parameter files, dependencies, model_service.launch.py
with the real `ros2 launch`) with the launch_testing pytest plugins on the path, as on a ROS install. The
project's own build (install/) stays off every path; on a machine with a ROS distro sourced, that distro
stands in for the venv."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)  # the project's environment of the distro under test (.venv, .venv-jazzy)
TOOLS = Path(os.environ.get("ROS2_CLI_TOOLS", REPO.parent / "shared" / "tools" / "ros2-cli"))
SUBSET = ["test/test_config.py", "test/core/settings/test_files.py", "test/test_workspace_dependencies.py"]
# what a user's fresh shell keeps from this one (not env.sh's paths, the overlay's, or the ROS wheels'
# re-exec guard _ROS_WHEELS_BOOTSTRAP_COMPLETE, which would leave the wheels' libraries off LD_LIBRARY_PATH)
KEEP_VARS = (
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "TERM",
    "TMPDIR",
    "CI",
    "ROS_DISTRO",
    "MMS_ROS",
    "ROS_DOMAIN_ID",
    "ROS_AUTOMATIC_DISCOVERY_RANGE",
    "ROS_LOG_DIR",
    "ROS2_CLI_OVERLAY",
    "ROS2_CLI_NO_LAUNCH_TESTING",
)


def copy_tree(dest: Path) -> None:
    """What `git clone` of the working tree gives: tracked and untracked-but-not-ignored files."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def user_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k in KEEP_VARS or k.startswith(("LC_", "PIP_")) or k.lower().endswith("_proxy")
    }
    env["PATH"] = ":".join(
        p for p in os.environ.get("PATH", "").split(":") if p and not p.startswith(str(REPO)) and "/opt/ros/" not in p
    )
    return env


def test_user_workspace_builds_and_passes_its_tests(tmp_path):
    distro = os.environ.get("ROS_DISTRO", "")
    ros_install = bool(distro) and Path(f"/opt/ros/{distro}/setup.bash").is_file()
    assert ros_install or (TOOLS / "setup.sh").is_file(), (
        f"neither a ROS install nor {TOOLS} (the shared ros2-cli tools beside the project)"
    )
    ws = tmp_path / "ws"
    copy_tree(ws / "src" / "ml_model_service")
    expected = ["ml_model_service", "ml_model_service_dev", "ml_model_service_interfaces"]  # dev: the tests' harness
    if (TOOLS / "extra" / "vision_msgs").is_dir():  # else the ROS install's vision_msgs
        shutil.copytree(TOOLS / "extra" / "vision_msgs", ws / "src" / "vision_msgs")
        subprocess.run(["chmod", "-R", "u+w", str(ws / "src" / "vision_msgs")], check=True)
        expected.append("vision_msgs")
    script = textwrap.dedent(f"""\
        set -eo pipefail
        if [ -n "${{ROS_DISTRO:-}}" ] && [ -f "/opt/ros/$ROS_DISTRO/setup.bash" ]; then
          source "/opt/ros/$ROS_DISTRO/setup.bash"
          if [ -f "{VENV}/bin/activate" ]; then source "{VENV}/bin/activate"; fi
        else  # the venv's ROS wheels (Kilted's or Jazzy's) stand in for /opt/ros/<distro>
          source "{VENV}/bin/activate"
          export AMENT_PREFIX_PATH="{VENV}" CMAKE_PREFIX_PATH="{VENV}"
          source "{TOOLS}/setup.sh" "{REPO}"
        fi
        cd "{ws}"
        echo "== colcon list"; colcon list --names-only
        colcon build --cmake-args -DBUILD_TESTING=OFF --event-handlers console_direct- > build.log 2>&1 \\
          || {{ tail -40 build.log; exit 1; }}
        source install/setup.bash
        echo "== package"; python3 -c 'import ml_model_service; print(ml_model_service.__file__)'
        ros2 pkg prefix ml_model_service
        echo "== plugins"; python3 -c 'import launch_testing.pytest.hooks' && echo launch_testing plugin present
        colcon test --packages-select ml_model_service --return-code-on-test-failure \\
          --event-handlers console_direct- --pytest-args {" ".join(SUBSET)} > test.log 2>&1 \\
          || {{ tail -60 test.log; exit 1; }}
        echo "== results"; colcon test-result --all --verbose
        """)
    res = subprocess.run(
        ["bash", "-c", script],
        env=user_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1200,
    )
    out = res.stdout
    assert res.returncode == 0, out[-6000:]
    listed = out.split("== colcon list")[1].split("==")[0].split()
    assert sorted(listed) == sorted(expected), listed  # third_party/vision_msgs stays out (COLCON_IGNORE)
    package = out.split("== package")[1].split("==")[0]
    assert str(ws / "install") in package and str(REPO / "install") not in package, package
    assert "launch_testing plugin present" in out  # the plugins that break pytest 9 were on the path
    results = out.split("== results")[1]
    summary = [line for line in results.splitlines() if line.startswith("Summary:")]
    assert summary, results
    total = int(summary[-1].split()[1])
    assert total >= 10 and " 0 errors, 0 failures" in summary[-1], summary[-1]


def test_suite_collects_with_and_without_the_launch_testing_plugins():
    """Kilted's launch_testing plugin breaks pytest 9 at start-up (ros2/launch#979) wherever a ROS install or
    the ros2-cli overlay puts it on the path; pytest.ini switches it off, so the suite starts either way
    (without: no plugin autoloads, as where neither is installed)."""
    probe = [sys.executable, "-c", "import launch_testing.pytest.hooks, launch_testing_ros"]
    assert subprocess.run(probe, capture_output=True).returncode == 0, (
        "launch_testing is not on this path (make test sources ../shared/tools/ros2-cli, which brings it)"
    )
    collect = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(REPO / "ml_model_service" / "pytest.ini"),
        "--rootdir",
        str(REPO / "ml_model_service"),
        "--collect-only",
        "-q",
        str(REPO / "ml_model_service" / "test"),
    ]
    for env in (dict(os.environ), {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}):
        res = subprocess.run(collect, env=env, capture_output=True, text=True, cwd=REPO, timeout=300)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert re.search(r"\b\d{2,} tests? collected", res.stdout), res.stdout[-2000:]
    plain = subprocess.run(
        [*collect[:3], "-p", "launch_testing", *collect[3:]], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert plain.returncode != 0 and "PluginValidationError" in plain.stdout + plain.stderr  # what pytest.ini averts
