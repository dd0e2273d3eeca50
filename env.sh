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
# Fast DDS with default transports loses most large (image) messages over UDP; LARGE_DATA moves user
# data over shared memory on one machine and TCP between machines (see README, "DDS for images").
export FASTDDS_BUILTIN_TRANSPORTS=${FASTDDS_BUILTIN_TRANSPORTS:-LARGE_DATA}
export RCUTILS_COLORIZED_OUTPUT=${RCUTILS_COLORIZED_OUTPUT:-0}
unset _mms_root
