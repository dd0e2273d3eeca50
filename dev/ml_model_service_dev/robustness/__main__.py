"""`python3 -m ml_model_service_dev.robustness [--phases ...]`: see the package's docstring."""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from ..paths import REPO as ROOT
from ..system import isolate_dds
from . import __doc__ as DOC
from . import graph
from .common import Harness
from .phases import (
    phase_bitflip,
    phase_flood,
    phase_infer,
    phase_leak,
    phase_restart,
    phase_swap,
    phase_topics,
    summary,
)

PHASES = (
    "infer",
    "topics",
    "restart",
    "swap",
    "flood",
    "leak",
    "bitflip",
    "malformed",
    "burst",
    "waiting",
    "startup",
    "hostile_models",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of {', '.join(PHASES)}")
    parser.add_argument("--infer-requests", type=int, default=10000)
    parser.add_argument("--topic-messages", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each timed phase")
    parser.add_argument("--domain", type=int, default=random.randint(150, 230), help="ROS_DOMAIN_ID to run in")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "robustness")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        parser.error(f"unknown phases {unknown}")
    isolate_dds(args.domain, profile=True)  # before rclpy starts

    harness = Harness(args.out)
    started = time.monotonic()
    try:
        for phase in phases:
            t = time.monotonic()
            print(f"--- {phase} ...", flush=True)
            try:
                if phase == "infer":
                    res = phase_infer(harness, args.infer_requests, max(args.seconds, 60.0))
                elif phase == "topics":
                    res = phase_topics(harness, args.topic_messages, args.seconds)
                elif phase == "restart":
                    res = phase_restart(harness, 3, 1.0)
                elif phase == "swap":
                    res = phase_swap(harness, args.seconds, 1.5)
                elif phase == "flood":
                    res = phase_flood(harness, args.seconds, 100.0)
                elif phase == "leak":
                    res = phase_leak(harness)
                elif phase == "bitflip":
                    res = phase_bitflip(harness, 40)
                elif phase == "malformed":
                    res = graph.phase_malformed(harness, args.seconds)
                elif phase == "burst":
                    res = graph.phase_burst(harness, (20, 40, 80))
                elif phase == "waiting":
                    res = graph.phase_waiting(harness, 25.0, 5)
                elif phase == "startup":
                    res = graph.phase_startup(harness)
                else:
                    res = graph.phase_hostile_models(harness, seconds=10.0)
            except Exception as exc:  # report and go on with the other phases
                res = {"error": f"{type(exc).__name__}: {exc}"}
            res["phase_seconds"] = round(time.monotonic() - t, 1)
            harness.results[phase] = res
            print(json.dumps({phase: res}, default=str), flush=True)
    finally:
        harness.close()
    print("\n".join(summary(harness.results)))
    print(f"total {time.monotonic() - started:.0f} s; node logs in {args.out / 'logs'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(harness.results, indent=2, default=str))
    return 0


raise SystemExit(main())
