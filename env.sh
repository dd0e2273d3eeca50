# Put the project's environment on this shell:  source env.sh
# (the virtual environment, the built workspace and the DDS settings for images).
# Run `make setup` (or scripts/bootstrap.sh) once first.
# MMS_ROS=jazzy picks the Jazzy wheels environment (`make setup ROS=jazzy`); the default is Kilted, or the ROS
# distro sourced on this shell.
_mms_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)
# shellcheck disable=SC1091
source "$_mms_root/scripts/ros_env.sh" || return 1 2>/dev/null || exit 1
if [ ! -f "$MMS_INSTALL/setup.bash" ]; then
  echo "env.sh: no $MMS_ROS build found; run 'make setup${MMS_ROS:+ ROS=$MMS_ROS}' in $_mms_root first" >&2
  return 1 2>/dev/null || exit 1
fi
export MMS_ROS
# shellcheck disable=SC1091
source "$MMS_VENV/bin/activate"
# shellcheck disable=SC1091
source "$MMS_INSTALL/setup.bash"
# Fast DDS with its default transports loses almost every large best-effort message (camera images);
# this profile gives it a large shared-memory segment and socket buffers (see README, "DDS for images").
# Fast DDS 3 (Kilted) reads FASTDDS_DEFAULT_PROFILES_FILE (and warns that the older name is deprecated); Fast DDS
# 2.x (Jazzy, Humble) reads only FASTRTPS_DEFAULT_PROFILES_FILE: the distro's names are set (as ros/dds.py does),
# to the user's own profile where one is set already.
if [ -z "${FASTDDS_BUILTIN_TRANSPORTS:-}" ]; then
  _mms_profile=${FASTDDS_DEFAULT_PROFILES_FILE:-${FASTRTPS_DEFAULT_PROFILES_FILE:-$_mms_root/ml_model_service/config/fastdds_large_data.xml}}
  export FASTDDS_DEFAULT_PROFILES_FILE=${FASTDDS_DEFAULT_PROFILES_FILE:-$_mms_profile}
  case ${ROS_DISTRO:-$MMS_ROS} in
    humble|iron|jazzy) export FASTRTPS_DEFAULT_PROFILES_FILE=${FASTRTPS_DEFAULT_PROFILES_FILE:-$_mms_profile} ;;
  esac
  unset _mms_profile
fi
export RCUTILS_COLORIZED_OUTPUT=${RCUTILS_COLORIZED_OUTPUT:-0}
unset _mms_root
