"""ros/dds.py: the Fast DDS profile under both releases' variable names (which name each distro reads, a user's
own profile kept), and the shipped profile itself (the camera stream that proves it in force in a node's own
process is test_dds_stream.py)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from ml_model_service.ros import dds


def test_profile_set_under_the_names_the_distro_reads():
    both = dict.fromkeys(dds.PROFILE_VARIABLES, "/p.xml")
    assert dds.profile_env("/p.xml", {"ROS_DISTRO": "jazzy"}) == both  # Fast DDS 2.x: FASTRTPS_...
    assert dds.profile_env("/p.xml", {"MMS_ROS": "jazzy"}) == both
    assert dds.profile_env("/p.xml", {}) == both  # a distro not known: both
    # Fast DDS 3 reads FASTDDS_... and warns that FASTRTPS_... is deprecated: that one alone
    assert dds.profile_env("/p.xml", {"ROS_DISTRO": "kilted"}) == {"FASTDDS_DEFAULT_PROFILES_FILE": "/p.xml"}
    # a user's own profile under either name is copied to the other, never replaced by ours
    assert dds.profile_env("/p.xml", {"FASTRTPS_DEFAULT_PROFILES_FILE": "/mine.xml", "ROS_DISTRO": "kilted"}) == {
        "FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"
    }
    assert dds.profile_env("/p.xml", {"FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}) == {
        "FASTRTPS_DEFAULT_PROFILES_FILE": "/mine.xml"
    }
    assert dds.profile_env("/p.xml", {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}) == {}
    env: dict[str, str] = {"ROS_DISTRO": "jazzy"}
    dds.use_profile(env)
    assert set(env) - {"ROS_DISTRO"} == set(dds.PROFILE_VARIABLES)
    assert env[dds.PROFILE_VARIABLES[0]].endswith(dds.PROFILE_NAME)
    assert dds.shipped_profile().is_file()


def test_each_distro_reads_its_own_names():
    for distro in ("humble", "Iron", "jazzy"):  # Fast DDS 2.x: both names (it reads only FASTRTPS_...)
        assert dds.profile_variables({"ROS_DISTRO": distro}) == dds.PROFILE_VARIABLES
    for distro in ("kilted", "rolling"):  # Fast DDS 3: its own name only, never the deprecated one
        assert dds.profile_variables({"ROS_DISTRO": distro}) == ("FASTDDS_DEFAULT_PROFILES_FILE",)
    assert dds.profile_variables({"MMS_ROS": "kilted", "ROS_DISTRO": ""}) == ("FASTDDS_DEFAULT_PROFILES_FILE",)
    # a profile already set under every name the distro reads: nothing to add
    assert dds.profile_env("/p.xml", {"ROS_DISTRO": "kilted", "FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}) == {}


def test_the_shipped_profile_replaces_the_builtin_transports_and_is_in_force_here():
    """The profile is the default participant profile, with a large shared-memory segment and large UDP buffers
    and no builtin transports (which lose large frames); this test run put a profile in force (conftest: the user's
    own, else this one) under every name this distro's Fast DDS reads, for this process and the nodes it starts."""
    ns = {"d": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
    root = ET.parse(dds.shipped_profile()).getroot()
    participant = root.find("d:profiles/d:participant", ns)
    assert participant is not None and participant.get("is_default_profile") == "true"
    assert participant.findtext("d:rtps/d:useBuiltinTransports", namespaces=ns) == "false"
    used = {t.text for t in participant.findall("d:rtps/d:userTransports/d:transport_id", ns)}
    kinds = {
        t.findtext("d:transport_id", namespaces=ns): t for t in root.findall("d:profiles/d:transport_descriptors/*", ns)
    }
    assert used == set(kinds) and {k.findtext("d:type", namespaces=ns) for k in kinds.values()} == {"SHM", "UDPv4"}
    shm = next(k for k in kinds.values() if k.findtext("d:type", namespaces=ns) == "SHM")
    assert int(shm.findtext("d:segment_size", namespaces=ns)) >= 16 * 2**20  # several 640x480 rgb8 frames
    in_force = [os.environ.get(name) for name in dds.profile_variables()]
    assert in_force and all(path and os.path.isfile(path) for path in in_force), in_force
