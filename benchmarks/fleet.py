"""Scheduling overhead of the device fleet: jobs over K simulated devices against a local call.

Starts a simulated fleet on 127.0.0.1 (``ray.cluster_utils.Cluster``: a 0-CPU head and K device
nodes, each labelled with its own device profile and one measurement slot), then

(a) runs a trivial function once per device (``run_on_devices(["all"], ...)``) ``--rounds`` times
    and reports the wall time per round, which is the overhead of one job (devices run in
    parallel): connect check, ship a 1 MiB file through the object store, schedule by label,
    write it into the node's private folder, call, return. Target: < 1 s per job.
(b) the same function called locally, for scale.
(c) a round where one device is absent: the time until its ``unavailable`` outcome.
(d) ``--jobs N`` profile jobs (``edgekit.fleet.profile``: the sample ONNX model on onnxruntime,
    ``--duration`` s each) spread over the K devices, against the same N profiles run one after
    another locally (``edgekit.profiling.profile``): wall time of each and the speed-up. On one
    machine the simulated devices share its cores, so the speed-up is bounded by the cores, not K.

The first round (worker start-up on each node) is reported apart. The last line states the figures.

    python benchmarks/fleet.py [--devices 3] [--rounds 10] [--jobs 6] [--duration 0.5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from edgekit._version import __version__
from edgekit.fleet import node_labels, node_resources, run_on_devices
from edgekit.fleet.cluster import VERSION_LABEL

PROFILES = ["raspberry-pi-5", "jetson-orin-nano", "hailo-8", "coral-edgetpu", "rockchip-rk3588", "generic-aarch64"]


def trivial(files: dict[str, Path]) -> int:
    """Read the shipped file's size: the least a real job does."""
    return sum(p.stat().st_size for p in files.values())


def profile_jobs(address: str, jobs: int, duration: float) -> tuple[float, float]:
    """(d): wall time of ``jobs`` profiles on the fleet (rounds of one per device) and of the same run locally."""
    from edgekit.fleet import list_nodes, profile
    from edgekit.models.sample import sample_model
    from edgekit.profiling import profile as local_profile

    model = sample_model("onnx")
    kw = {"runtimes": ["onnxruntime"], "duration": duration, "warmup": 5, "op_profile": False}
    devices = sorted({n.device for n in list_nodes() if n.device and n.slots})
    t = time.perf_counter()
    left = jobs
    while left > 0:  # one round: one job per device, in parallel
        report = profile(model, address, devices[:left], **kw)
        assert all(r.measured for r in report.results), [r.error for r in report.results]
        left -= len(devices[:left])
    fleet_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(jobs):
        assert all(r.measured for r in local_profile(model, **kw).results)
    return fleet_s, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=3, help="simulated device nodes (K)")
    ap.add_argument("--rounds", type=int, default=10, help="rounds of one job per device")
    ap.add_argument("--jobs", type=int, default=6, help="profile jobs for (d) (N), spread over the K devices")
    ap.add_argument("--duration", type=float, default=0.5, help="measuring budget of each profile job, seconds")
    args = ap.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    t0 = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False,
        "labels": {VERSION_LABEL: __version__}})
    try:
        for i in range(args.devices):
            cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", resources=node_resources(),
                             labels=node_labels(PROFILES[i % len(PROFILES)], declared=True, host=f"sim{i}"))
        startup = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            payload = Path(tmp) / "model.bin"
            payload.write_bytes(b"\0" * (1 << 20))
            t = time.perf_counter()
            first = run_on_devices(cluster.address, ["all"], trivial, [payload])
            first_s = time.perf_counter() - t
            assert all(o.ok for o in first), [o.reason for o in first]
            rounds = []
            for _ in range(args.rounds):
                t = time.perf_counter()
                outcomes = run_on_devices(cluster.address, ["all"], trivial, [payload])
                rounds.append(time.perf_counter() - t)
                assert all(o.ok and o.value == 1 << 20 for o in outcomes), [o.reason for o in outcomes]
            t = time.perf_counter()
            for _ in range(args.rounds):
                trivial({"model.bin": payload})
            local = (time.perf_counter() - t) / args.rounds
            t = time.perf_counter()
            absent = run_on_devices(cluster.address, ["no-such-device"], trivial)
            absent_s = time.perf_counter() - t
            assert absent[0].status == "unavailable"
            fleet_s, local_s = profile_jobs(cluster.address, args.jobs, args.duration)
    finally:
        ray.shutdown()
        cluster.shutdown()
    per_job = statistics.median(rounds)
    print(f"fleet ({sys.platform}, {args.devices} simulated devices, {args.rounds} rounds): cluster start-up "
          f"{startup:.1f} s; first round {first_s:.2f} s (worker start-up); (a) per job median {per_job:.3f} s, "
          f"max {max(rounds):.3f} s (target < 1 s); (b) local call {local * 1e3:.3f} ms "
          f"(overhead {per_job - local:.3f} s); (c) absent device unavailable after {absent_s:.2f} s (target <= 10 s); "
          f"(d) {args.jobs} profile jobs ({args.duration:g} s each) over {args.devices} devices {fleet_s:.1f} s vs "
          f"{local_s:.1f} s one after another locally ({local_s / fleet_s:.2f}x; {os.cpu_count()} cores shared)")


if __name__ == "__main__":
    main()
