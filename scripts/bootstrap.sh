#!/usr/bin/env bash
# Set up everything the project needs, from its own files, and build the ROS packages.
#
#   bash scripts/bootstrap.sh        (what `make setup`, `make demo` and `make test` call)
#
# - No ROS sourced (ROS_DISTRO unset): a virtual environment .venv with ROS 2 Kilted from PyPI wheels,
#   pinned, plus the inference/vision libraries; the wheels' CMake files are fixed for this interpreter.
# - A ROS distro sourced (Jazzy, Kilted...): .venv sees the system's packages and only the inference/vision
#   libraries are added; the distro's rclpy and messages are used.
# Then colcon builds the workspace (and the development copy of vision_msgs where the distro has none).
# Idempotent: each step is skipped while its inputs are unchanged, so a second run takes seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV="$ROOT/.venv"
STAMPS="$ROOT/build/.stamps"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
say() { printf '[bootstrap] %s\n' "$*"; }

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# open3d's import needs libusb-1.0.so.0 (a Debian package, not a wheel).
if ! ldconfig -p 2>/dev/null | grep 'libusb-1.0.so.0' >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing libusb-1.0-0 (needed by open3d)"
    apt-get install -y -q libusb-1.0-0 >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q libusb-1.0-0 >/dev/null; }
  else
    say "WARNING: libusb-1.0.so.0 is missing; install it (apt-get install libusb-1.0-0) or open3d will not import"
  fi
fi

mkdir -p "$STAMPS"

# Python environments are built in a cache folder keyed by what built them (the pinned requirement files and
# the interpreter), and linked into the checkout: a fresh clone (CI) links a complete one instead of installing
# again; changed requirements build a new one. MMS_CACHE_DIR moves the folder; MMS_CACHE_DIR=none turns it off.
CACHE=${MMS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ml_model_service}
use_cached() {  # use_cached ENV_DIR KEY [VENV_ARGS...]: ENV_DIR becomes a link to the cached environment of KEY
  local dir=$1 key=$2; shift 2
  [ "$CACHE" = none ] && return 0
  [ -e "$dir" ] && [ ! -L "$dir" ] && return 0  # a checkout's own environment stays as it is
  local cached="$CACHE/env-$(echo "$key" | sha256sum | cut -c1-16)"
  [ -L "$dir" ] && [ "$(readlink "$dir")" != "$cached" ] && rm "$dir"
  [ -e "$dir" ] && return 0
  if [ -f "$cached/.complete" ]; then
    ln -s "$cached" "$dir"
    say "using the cached environment $cached for $(basename "$dir")"
    case $dir in */build/*-venv) echo "$key" > "$STAMPS/$(basename "$dir" -venv)" ;; *) echo "$key" > "$STAMPS/venv" ;; esac
    return 0
  fi
  rm -rf "$cached" && mkdir -p "$CACHE" && "$PY" -m venv "$@" "$cached" && ln -s "$cached" "$dir"
}
cached_complete() { [ -L "$1" ] && touch "$1/.complete" || true; }
# 1. Python environment -------------------------------------------------------------------------
if [ -n "${ROS_DISTRO:-}" ]; then
  MODE="system-ros-$ROS_DISTRO"
  REQS=(scripts/requirements.txt)
  VENV_ARGS=(--system-site-packages)
else
  MODE="wheels"
  REQS=(scripts/requirements-ros.txt scripts/requirements.txt)
  VENV_ARGS=()
fi
want="$MODE-$(hash_of "${REQS[@]}" scripts/constraints.txt)-$($PY -c 'import sys; print(sys.version.split()[0])')"
use_cached "$VENV" "$want" "${VENV_ARGS[@]}"
if [ "$(cat "$STAMPS/venv" 2>/dev/null)" != "$want" ] || [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV ($MODE)"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "${VENV_ARGS[@]}" "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  req_args=()
  for r in "${REQS[@]}"; do req_args+=(-r "$r"); done
  if [ "$MODE" = wheels ]; then
    "$VENV/bin/python" -m pip install -q -c scripts/constraints.txt "${req_args[@]}"
  else
    # A sourced distro brings its own numpy/ROS; pin only what we add.
    "$VENV/bin/python" -m pip install -q "${req_args[@]}"
  fi
  if [ "$MODE" = wheels ]; then
    # The wheels' exported CMake files name the wheel builder's interpreter paths; point them here.
    inc=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    npinc=$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')
    # (nothing to patch is fine: an updated venv was patched before, and grep then exits 1)
    { grep -rl --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" 2>/dev/null || true; } | while read -r f; do
      sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$npinc#g" \
             -e "s#/opt/python/cp311-cp311/include/python3.11#$inc#g" "$f"
    done
  fi
  echo "$want" > "$STAMPS/venv"
  cached_complete "$VENV"
else
  say "python environment up to date ($MODE)"
fi

# 1b. Serving engines: tritonclient (Open Inference Protocol) and OpenVINO, every dependency pinned in the file
# (--no-deps: tritonclient's declared protobuf/ml-dtypes caps are below the suite's pins, which it works with).
want="$(cat "$STAMPS/venv")-$(hash_of scripts/requirements-serving.txt)"
if [ "$(cat "$STAMPS/serving" 2>/dev/null)" != "$want" ]; then
  say "installing the serving engines (tritonclient, openvino)"
  "$VENV/bin/python" -m pip install -q --no-deps -r scripts/requirements-serving.txt
  echo "$want" > "$STAMPS/serving"
fi

# Test-only environments of their own, each from a full freeze installed with --no-deps, cached like the others.
own_env() {  # own_env NAME REQUIREMENTS WHAT: build/NAME-venv
  local name=$1 reqs=$2 what=$3 dir="$ROOT/build/$1-venv" want
  want="$name-$(hash_of "$reqs")"
  mkdir -p "$ROOT/build"
  use_cached "$dir" "$want"
  if [ "$(cat "$STAMPS/$name" 2>/dev/null)" != "$want" ] || [ ! -x "$dir/bin/python" ]; then
    say "creating $dir ($what)"
    [ -x "$dir/bin/python" ] || "$PY" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --no-deps -r "$reqs"
    echo "$want" > "$STAMPS/$name"
    cached_complete "$dir"
  fi
}
# 1c. KServe's ModelServer for the tests (its pins clash with the suite's).
own_env kserve scripts/requirements-kserve.txt "KServe ModelServer for the tests"
# 1d. The exporters (Ultralytics, CPU use of torch, torchvision, onnx, OpenVINO): the suite's layouts are verified
# against real exports and the exporter's own predictions (test/exporters/make_export.py). About 6 GB (PyPI's
# torch brings CUDA libraries). MMS_EXPORTERS=0 skips it (the exporter tests then fail, saying why).
[ "${MMS_EXPORTERS:-1}" = 0 ] || own_env exporters scripts/requirements-exporters.txt \
  "the exporters the tests verify layouts against; about 2 minutes"

# 2. Workspace build ----------------------------------------------------------------------------
# shellcheck disable=SC1091
source "$VENV/bin/activate"
if [ "$MODE" = wheels ]; then
  export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
fi
BASE_PATHS=(ml_model_service_interfaces ml_model_service)
if [ "$MODE" = wheels ] || ! python -c 'import vision_msgs.msg' >/dev/null 2>&1; then
  BASE_PATHS=(third_party/vision_msgs "${BASE_PATHS[@]}")
  say "vision_msgs not in the ROS environment: building the development copy"
fi
srcs=$(find "${BASE_PATHS[@]}" -type f \( -name '*.msg' -o -name '*.srv' -o -name 'CMakeLists.txt' \
        -o -name 'package.xml' -o -name 'setup.py' -o -name 'setup.cfg' -o -path '*/launch/*' -o -path '*/config/*' \) | sort)
want="$MODE-$(hash_of $srcs)-$(echo "${BASE_PATHS[*]}" | sha256sum | cut -c1-8)"
if [ "$(cat "$STAMPS/build" 2>/dev/null)" != "$want" ] || [ ! -f install/setup.bash ]; then
  say "colcon build (${BASE_PATHS[*]})"
  mkdir -p log
  colcon build --symlink-install --base-paths "${BASE_PATHS[@]}" \
    --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" \
    --event-handlers console_direct- summary- > log/colcon-build.txt 2>&1 \
    || { mkdir -p log; tail -40 log/colcon-build.txt; say "colcon build failed (log/colcon-build.txt)"; exit 1; }
  echo "$want" > "$STAMPS/build"
else
  say "workspace up to date"
fi
say "ready: source env.sh"
