# The two commands: `make demo` (set up if needed, run the main job) and `make test` (set up if needed,
# run every test). `make setup` only sets up; `make lint`, `make bench` are for developers.
SHELL := /bin/bash
# ROS=jazzy: every target on the Jazzy (LTS) wheels environment instead of Kilted's (its own venv and build,
# side by side: scripts/ros_env.sh). Where a ROS 2 distro is sourced, that distro is used and ROS must match it.
ROS ?=
ifneq ($(ROS),)
export MMS_ROS := $(ROS)
endif
ENV := source env.sh &&
OUT ?= out/demo
# The launch tests need the real `ros2` / `ros2 launch`: a sourced ROS install's (ROS_DISTRO set and ros2 on
# PATH), else the Kilted tools built by ../shared/tools/ros2-cli into build/ros2-cli (first time ~40 s).
ROS2_CLI ?= $(abspath ../shared/tools/ros2-cli/setup.sh)
export ROS2_CLI_OVERLAY ?= $(CURDIR)/build$(if $(filter-out kilted,$(ROS)),/$(ROS))/ros2-cli
WITH_ROS2 := { if [ -n "$${ROS_DISTRO:-}" ] && command -v ros2 >/dev/null; then :; \
  elif [ -f "$(ROS2_CLI)" ]; then source "$(ROS2_CLI)" . || exit 1; \
  else echo "make test: no ros2 (source a ROS 2 install, or put shared/tools/ros2-cli beside the project):" \
    "the launch and ros2 CLI tests will fail" >&2; fi; } &&

.PHONY: setup demo test test-ros test-unit lint format bench clean
PYTEST := python3 -m pytest -c ml_model_service/pytest.ini --rootdir ml_model_service ml_model_service/test

setup:
	@bash scripts/bootstrap.sh

demo: setup
	@$(ENV) python3 -m ml_model_service_dev.demo --out $(OUT)

test: setup
	@$(ENV) $(WITH_ROS2) ruff check ml_model_service dev && ruff format --check ml_model_service dev && \
	  mypy && $(PYTEST) $(PYTEST_ARGS)

# The ROS tests alone (nodes over DDS, launch, lifecycle, tf2, the ros2 CLI, the user-workspace build): what CI
# runs on the second distro (`make test-ros ROS=jazzy`).
test-ros: setup
	@$(ENV) $(WITH_ROS2) $(PYTEST) -m ros $(PYTEST_ARGS)

# The ROS-free tests alone (core, decoders, settings, architecture): no DDS, no ros2 CLI, seconds.
test-unit: setup
	@$(ENV) $(PYTEST) -m "not ros" $(PYTEST_ARGS)

lint: setup
	@$(ENV) ruff check ml_model_service dev && ruff format --check ml_model_service dev && mypy

format: setup
	@$(ENV) ruff format ml_model_service dev

bench: setup
	@$(ENV) python3 -m ml_model_service_dev.bench

clean:
	rm -rf build install install-jazzy log .venv .venv-jazzy out
