# Put the project's environment on this shell:  source env.sh
# (the virtual environment, the built workspace and the DDS settings for images).
# Run `make setup` (or scripts/bootstrap.sh) once first.
_mms_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)
if [ ! -f "$_mms_root/install/setup.bash" ]; then
  echo "env.sh: no build found; run 'make setup' in $_mms_root first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
source "$_mms_root/.venv/bin/activate"
# shellcheck disable=SC1091
source "$_mms_root/install/setup.bash"
# Fast DDS with its default transports loses almost every large best-effort message (camera images);
# this profile gives it a large shared-memory segment and socket buffers (see README, "DDS for images").
if [ -z "${FASTDDS_BUILTIN_TRANSPORTS:-}" ]; then
  export FASTDDS_DEFAULT_PROFILES_FILE=${FASTDDS_DEFAULT_PROFILES_FILE:-$_mms_root/ml_model_service/config/fastdds_large_data.xml}
fi
export RCUTILS_COLORIZED_OUTPUT=${RCUTILS_COLORIZED_OUTPUT:-0}
unset _mms_root
