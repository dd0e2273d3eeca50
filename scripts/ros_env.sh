# The ROS environment the project builds and runs on, and its folders (sourced by bootstrap.sh and env.sh).
#
# A sourced ROS distro (ROS_DISTRO set: an apt or source install) is used as it is. Otherwise MMS_ROS picks the
# PyPI wheels: kilted (the default) or jazzy (the LTS). Each wheels distro has its own virtual environment and
# workspace build, so both can be set up side by side in one checkout:
#   kilted: .venv, install, build              jazzy: .venv-jazzy, install-jazzy, build/jazzy
# In:  _mms_root (the checkout). Out: MMS_ROS, MMS_VENV, MMS_INSTALL, MMS_BUILD; returns 1 on a bad choice.
if [ -n "${ROS_DISTRO:-}" ]; then
  if [ -n "${MMS_ROS:-}" ] && [ "$MMS_ROS" != "$ROS_DISTRO" ]; then
    echo "ROS=$MMS_ROS was asked for, but ROS 2 $ROS_DISTRO is sourced on this shell" >&2
    return 1
  fi
  MMS_ROS=$ROS_DISTRO
  _mms_suffix=
else
  MMS_ROS=${MMS_ROS:-kilted}
  case $MMS_ROS in
    kilted) _mms_suffix= ;;
    jazzy) _mms_suffix=-jazzy ;;
    *) echo "ROS=$MMS_ROS: the wheels environments are kilted and jazzy (or source a ROS 2 install)" >&2
       return 1 ;;
  esac
fi
MMS_VENV=$_mms_root/.venv$_mms_suffix
MMS_INSTALL=$_mms_root/install$_mms_suffix
MMS_BUILD=$_mms_root/build${_mms_suffix:+/$MMS_ROS}
unset _mms_suffix
