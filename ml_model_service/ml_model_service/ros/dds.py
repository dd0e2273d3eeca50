"""The Fast DDS profile that camera images need, set under the name each Fast DDS release reads.

Fast DDS 3 (ROS 2 Kilted and later) reads `FASTDDS_DEFAULT_PROFILES_FILE` (and warns that the older name is
deprecated); Fast DDS 2.x (Humble, Jazzy) reads only `FASTRTPS_DEFAULT_PROFILES_FILE`. The name the distro does
not read leaves it on the default transports, which lose most large best-effort messages. ROS-free: it only
reads and writes environment variables, so it can run before rclpy is imported (the profile is read when the
first participant is made).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

#: The profile variable of each Fast DDS major release, newest first.
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
PROFILE_NAME = "fastdds_large_data.xml"


def shipped_profile() -> Path:
    """The shipped large-data profile: the installed package's (`share/ml_model_service/config/`), else the
    source tree's."""
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory("ml_model_service")) / "config" / PROFILE_NAME
        if installed.is_file():
            return installed
    except (ImportError, LookupError, ValueError):
        pass
    return Path(__file__).resolve().parents[2] / "config" / PROFILE_NAME


#: Distros whose Fast DDS is 2.x, which reads only the older name (Fast DDS 3 warns that it is deprecated).
FAST_DDS_2_DISTROS = ("humble", "iron", "jazzy")


def profile_variables(environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The profile variables this ROS distro's Fast DDS reads (`ROS_DISTRO`, or `MMS_ROS` in the project's
    wheels environments): Fast DDS 3's name from Kilted on, both names for Jazzy and older, and both where the
    distro is not known."""
    distro = (environ.get("ROS_DISTRO") or environ.get("MMS_ROS") or "").lower()
    return PROFILE_VARIABLES[:1] if distro and distro not in FAST_DDS_2_DISTROS else PROFILE_VARIABLES


def profile_env(default: str | os.PathLike[str], environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The variables to add so this distro's Fast DDS loads one profile: the user's own (under either name) or
    `default`. Nothing when the user chose the builtin transports (`FASTDDS_BUILTIN_TRANSPORTS`)."""
    if environ.get("FASTDDS_BUILTIN_TRANSPORTS"):
        return {}
    chosen = next((environ[name] for name in PROFILE_VARIABLES if environ.get(name)), str(default))
    return {name: chosen for name in profile_variables(environ) if not environ.get(name)}


def use_profile(environ: MutableMapping[str, str] = os.environ) -> None:
    """Put the user's or the shipped profile in force for this process and the processes it starts (call before
    rclpy is imported)."""
    environ.update(profile_env(shipped_profile(), environ))
