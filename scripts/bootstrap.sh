#!/usr/bin/env bash
# Set up everything the project needs, from its own files, and build the ROS packages.
#
#   bash scripts/bootstrap.sh        (what `make setup`, `make demo` and `make test` call)
#   MMS_ROS=jazzy bash scripts/bootstrap.sh    (`make setup ROS=jazzy`: the Jazzy wheels environment)
#
# - No ROS sourced (ROS_DISTRO unset): a virtual environment with ROS 2 from PyPI wheels, pinned, plus the
#   inference/vision libraries; the wheels' CMake files are fixed for this interpreter. Kilted (the default) in
#   .venv, or Jazzy (MMS_ROS=jazzy) in .venv-jazzy (folders: scripts/ros_env.sh). The wheels are for Python 3.11.
# - A ROS distro sourced (Jazzy, Kilted...): .venv, made with the distro's interpreter (`python3`: 3.12 on an apt
#   Jazzy), sees the system's packages and only the inference/vision libraries are added, pinned to versions that
#   work with the distro's numpy; the distro's rclpy and messages are used.
# Then colcon builds the workspace (and the development copy of vision_msgs where the distro has none).
# Idempotent: each step is skipped while its inputs are unchanged, so a second run takes seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
_mms_root=$ROOT
# shellcheck disable=SC1091
source scripts/ros_env.sh || exit 2
VENV=$MMS_VENV
STAMPS="$MMS_BUILD/.stamps"        # this ROS environment's steps
SHARED_STAMPS="$ROOT/build/.stamps"  # the test-only environments every ROS environment shares
if [ -n "${ROS_DISTRO:-}" ]; then
  PY=${PYTHON:-python3}  # the distro's interpreter, which its rclpy was built for
else
  PY=${PYTHON:-python3.11}  # PyPI's ROS wheels are built for CPython 3.11
  command -v "$PY" >/dev/null 2>&1 || PY=python3
fi
say() { printf '[bootstrap] %s\n' "$*"; }

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# open3d's import needs libusb-1.0.so.0 (a Debian package, not a wheel).
if ! PATH="$PATH:/sbin:/usr/sbin" ldconfig -p 2>/dev/null | grep 'libusb-1.0.so.0' >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing libusb-1.0-0 (needed by open3d)"
    apt-get install -y -q libusb-1.0-0 >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q libusb-1.0-0 >/dev/null; }
  else
    say "WARNING: libusb-1.0.so.0 is missing; install it (apt-get install libusb-1.0-0) or open3d will not import"
  fi
fi

mkdir -p "$STAMPS" "$SHARED_STAMPS"

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
    fix_scripts "$dir"
    say "using the cached environment $cached for $(basename "$dir")"
    case $dir in */build/*-venv) echo "$key" > "$SHARED_STAMPS/$(basename "$dir" -venv)" ;; *) echo "$key" > "$STAMPS/venv" ;; esac
    return 0
  fi
  rm -rf "$cached" && mkdir -p "$CACHE" && "$PY" -m venv "$@" "$cached" && ln -s "$cached" "$dir"
}
fix_scripts() {  # fix_scripts ENV_DIR: its console scripts run its interpreter by the cache folder's own path
  # pip writes the path it was run by into each script's first line; through a checkout's link, that path dies
  # with the checkout (and another checkout may link the same cache).
  local real; real=$(cd "$1" && pwd -P)
  { grep -l -s -m1 '^#!/.*/bin/python[0-9.]*$' "$real"/bin/* 2>/dev/null || true; } | while read -r f; do
    head -1 "$f" | grep -q "^#!$real/bin/" || sed -i "1s|^#!/.*/bin/python|#!$real/bin/python|" "$f"
  done
}
cached_complete() { [ -L "$1" ] && fix_scripts "$1" && touch "$1/.complete" || true; }
# 1. Python environment -------------------------------------------------------------------------
# Constraints: scripts/constraints.txt pins the whole Kilted environment; a distro's file of its own
# (constraints-jazzy.txt, constraints-system.txt) replaces the pins it names and keeps the rest.
CONSTRAINTS=(scripts/constraints.txt)
if [ -n "${ROS_DISTRO:-}" ]; then
  MODE="system-ros-$ROS_DISTRO"
  REQS=(scripts/requirements.txt)
  VENV_ARGS=(--system-site-packages)
  CONSTRAINTS+=(scripts/constraints-system.txt)
elif [ "$MMS_ROS" = kilted ]; then
  MODE="wheels"
  REQS=(scripts/requirements-ros.txt scripts/requirements.txt)
  VENV_ARGS=()
else
  MODE="wheels-$MMS_ROS"
  REQS=("scripts/requirements-ros-$MMS_ROS.txt" scripts/requirements.txt)
  VENV_ARGS=()
  CONSTRAINTS+=("scripts/constraints-$MMS_ROS.txt")
fi
pin_names() {  # pin_names FILE: the packages a pins file (or `pip list --format=freeze`) names, normalised, a line each
  sed -e 's/[[:space:]]*#.*//' -e '/^$/d' -e 's/[<>=!~;[ ].*//' "$1" | tr 'A-Z_.' 'a-z--'
}
pins_without() {  # pins_without NAMES PINS: the lines of PINS whose package is not in NAMES (from pin_names)
  awk 'NR == FNR { drop[$0] = 1; next } { n = $0; sub(/[<>=!~;[ ].*/, "", n); n = tolower(n); gsub(/[_.]/, "-", n); if (!(n in drop)) print }' \
    "$1" "$2"
}
constraints_file() {  # one file of pins: constraints.txt with the names the distro's file pins replaced by its pins
  local out=$1 over=${CONSTRAINTS[1]:-}
  if [ -z "$over" ]; then cp "${CONSTRAINTS[0]}" "$out"; return; fi
  pins_without <(pin_names "$over") "${CONSTRAINTS[0]}" > "$out"
  grep -v '^[[:space:]]*#' "$over" | grep -v '^[[:space:]]*$' >> "$out"
}
want="$MODE-$(hash_of "${REQS[@]}" "${CONSTRAINTS[@]}")-$($PY -c 'import sys; print(sys.version.split()[0])')"
use_cached "$VENV" "$want" "${VENV_ARGS[@]}"
if [ "$(cat "$STAMPS/venv" 2>/dev/null)" != "$want" ] || [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV ($MODE)"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "${VENV_ARGS[@]}" "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  req_args=()
  for r in "${REQS[@]}"; do req_args+=(-r "$r"); done
  mkdir -p "$MMS_BUILD"
  constraints_file "$MMS_BUILD/constraints.txt"
  if [ -n "${ROS_DISTRO:-}" ]; then
    # A sourced distro brings its own numpy, PyYAML and ROS packages: they stay as they are (a pin of ours on one
    # of them would replace the distro's copy in the venv), and what we add is pinned to work with them.
    "$VENV/bin/python" -m pip list --format=freeze 2>/dev/null | pin_names /dev/stdin > "$MMS_BUILD/system-packages.txt"
    pins_without "$MMS_BUILD/system-packages.txt" "$MMS_BUILD/constraints.txt" > "$MMS_BUILD/constraints-added.txt"
    "$VENV/bin/python" -m pip install -q -c "$MMS_BUILD/constraints-added.txt" "${req_args[@]}"
  else
    "$VENV/bin/python" -m pip install -q -c "$MMS_BUILD/constraints.txt" "${req_args[@]}"
  fi
  if [ -z "${ROS_DISTRO:-}" ]; then
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
own_env() {  # own_env NAME REQUIREMENTS WHAT [BASE]: build/NAME-venv (over build/BASE-venv's packages when given)
  local name=$1 reqs=$2 what=$3 base=${4:-} dir="$ROOT/build/$1-venv" want site
  want="$name-$(hash_of "$reqs")${base:+-over-$(cat "$SHARED_STAMPS/$base" 2>/dev/null)}"
  mkdir -p "$ROOT/build"
  use_cached "$dir" "$want"
  if [ "$(cat "$SHARED_STAMPS/$name" 2>/dev/null)" != "$want" ] || [ ! -x "$dir/bin/python" ]; then
    say "creating $dir ($what)"
    [ -x "$dir/bin/python" ] || "$PY" -m venv "$dir"
    if [ -n "$base" ]; then  # an overlay: its own pins first, the base environment's packages after them
      site=$("$dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
      "$ROOT/build/$base-venv/bin/python" -c 'import os, sysconfig; print(os.path.realpath(sysconfig.get_paths()["purelib"]))' \
        > "$site/base-environment.pth"
    fi
    "$dir/bin/python" -m pip install -q --no-deps -r "$reqs"
    echo "$want" > "$SHARED_STAMPS/$name"
    cached_complete "$dir"
  fi
}
# 1c. KServe's ModelServer for the tests (its pins clash with the suite's).
own_env kserve scripts/requirements-kserve.txt "KServe ModelServer for the tests"
# 1d. The exporters (Ultralytics, CPU use of torch, torchvision, onnx, OpenVINO): the suite's layouts are verified
# against real exports and the exporter's own predictions (dev/ml_model_service_dev/exporters/make_export.py). About 6 GB (PyPI's
# torch brings CUDA libraries). MMS_EXPORTERS=0 skips it (the exporter tests then fail, saying why).
[ "${MMS_EXPORTERS:-1}" = 0 ] || own_env exporters scripts/requirements-exporters.txt \
  "the exporters the tests verify layouts against; about 2 minutes"
# 1e. Hugging Face's exporter (optimum, which pins transformers below 4.58) and timm, over the exporters' torch.
[ "${MMS_EXPORTERS:-1}" = 0 ] || own_env hf-exporters scripts/requirements-hf-exporters.txt \
  "optimum and timm for the Hugging Face export tests" exporters
# 1f. RF-DETR, and YOLOX's own export code (its PyPI sdist: setup.py builds C++ ops the export does not use, so the
# source is fetched from PyPI and used as it is), over the exporters' torch.
if [ "${MMS_EXPORTERS:-1}" != 0 ]; then
  own_env rfdetr-yolox scripts/requirements-rfdetr-yolox.txt "RF-DETR and YOLOX for their export tests" exporters
  [ -d build/rfdetr-yolox-venv/yolox-0.3.0 ] || build/rfdetr-yolox-venv/bin/python \
    dev/ml_model_service_dev/exporters/make_rfdetr_yolox.py --fetch-yolox build/rfdetr-yolox-venv/ >/dev/null
fi

# 2. Workspace build ----------------------------------------------------------------------------
# shellcheck disable=SC1091
source "$VENV/bin/activate"
if [ -z "${ROS_DISTRO:-}" ]; then
  export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
fi
BASE_PATHS=(ml_model_service_interfaces ml_model_service dev)
if [ -z "${ROS_DISTRO:-}" ] || ! python -c 'import vision_msgs.msg' >/dev/null 2>&1; then
  BASE_PATHS=(third_party/vision_msgs "${BASE_PATHS[@]}")
  say "vision_msgs not in the ROS environment: building the development copy"
fi
srcs=$(find "${BASE_PATHS[@]}" -type f \( -name '*.msg' -o -name '*.srv' -o -name 'CMakeLists.txt' \
        -o -name 'package.xml' -o -name 'setup.py' -o -name 'setup.cfg' -o -path '*/launch/*' -o -path '*/config/*' \) | sort)
want="$MODE-$(hash_of $srcs)-$(echo "${BASE_PATHS[*]}" | sha256sum | cut -c1-8)"
BUILD_LOG="log/colcon-build-$MMS_ROS.txt"
if [ "$(cat "$STAMPS/build" 2>/dev/null)" != "$want" ] || [ ! -f "$MMS_INSTALL/setup.bash" ]; then
  say "colcon build (${BASE_PATHS[*]}; ROS 2 $MMS_ROS)"
  mkdir -p log
  python -m colcon build --symlink-install --base-paths "${BASE_PATHS[@]}" --build-base "$MMS_BUILD" \
    --install-base "$MMS_INSTALL" \
    --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" \
    --event-handlers console_direct- summary- > "$BUILD_LOG" 2>&1 \
    || { tail -40 "$BUILD_LOG"; say "colcon build failed ($BUILD_LOG)"; exit 1; }
  echo "$want" > "$STAMPS/build"
else
  say "workspace up to date"
fi
if [ "$MMS_ROS" = kilted ] || [ -n "${ROS_DISTRO:-}" ]; then say "ready: source env.sh"; else say "ready: MMS_ROS=$MMS_ROS source env.sh"; fi
