"""This machine, as the tools see it: a private DDS domain, a process's memory, the CPU's name."""

from __future__ import annotations

import os
import random
from pathlib import Path

from ml_model_service.core.runtimes.choice import cpu_name  # noqa: F401 (one home: the product's reader)


def isolate_dds(domain: int | None = None, profile: bool = False) -> int:
    """A DDS domain of this host only (`domain`, else ROS_DOMAIN_ID when set, else a random one in 101..199),
    set before rclpy loads; with `profile`, the shipped large-data profile too. The domain used."""
    if domain is None:
        domain = int(os.environ.get("ROS_DOMAIN_ID") or random.randint(101, 199))
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if profile:
        from ml_model_service.ros import dds

        dds.use_profile()
    return domain


def proc_kb(pid: int, key: str) -> int:
    """A /proc/PID/status figure in kB (VmRSS, VmHWM...); 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mib(pid: int) -> float:
    """A process's resident memory in MiB (0 when it is gone)."""
    return proc_kb(pid, "VmRSS") / 1024.0
