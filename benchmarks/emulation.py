"""The emulated backend: its wall-time cost, and its latency model against published device figures.

1. Wall time. The emulated run of a model, as a ratio of the reference runtime's raw call on the
   same model (ONNX Runtime ``InferenceSession.run``, same threads, spinning off), interleaved
   call by call in one process; the ratio of the medians. Target (issue 4): at most 1.5x for fp32
   profiles. fp16 and int8 profiles are shown for information: they run a rewritten model (casts
   around every accelerator op; QDQ int8) and are not held to the target.
2. Fidelity of the latency model. Its predictions for the published figures of
   ``devices/emulation/calibration/`` (:func:`edgekit.emulation.figures.load_figures`), each on a
   structurally equivalent network (:mod:`edgekit.testing.networks`) built without weights:
   latency depends on topology and shapes, not on the weight values. Leave-one-network-out per
   device (:mod:`edgekit.emulation.calibrate`): each network predicted by the hand-set parameters
   (before) and by parameters fitted to the device's other networks (after).

    python benchmarks/emulation.py [--rounds 200] [--skip-wall]

The last line states the figures.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import edgekit
from edgekit.devices import get_profile
from edgekit.emulation.calibrate import CrossValidation, Fit, cross_validate, fit
from edgekit.emulation.figures import load_figures
from edgekit.emulation.samples import figure_samples, select_metric, select_runtime
from edgekit.emulation.spec import accelerator_spec, hand_set
from edgekit.testing.networks import NETWORKS, build_network, graph_builder

#: (label, device, options) emulated for the wall-time ratio; fp32 ones are held to the 1.5x target
WALL = [
    ("generic-x86-64 (cpu, fp32)", "generic-x86-64", {}, True),
    ("raspberry-pi-5 (cpu, fp32)", "raspberry-pi-5", {}, True),
    ("nvidia-rtx-4090 (cuda, fp32)", "nvidia-rtx-4090", {"accelerator": "cuda"}, True),
    ("jetson-orin-nano (tensorrt, fp16)", "jetson-orin-nano", {}, False),
    ("coral-edgetpu (edgetpu, int8)", "coral-edgetpu", {"calibration": "x"}, False),
]


def _raw_ort(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return lambda feeds: sess.run(names, feeds)


def wall_ratios(model: Path, x: np.ndarray, rounds: int, threads: int) -> list[tuple[str, float, float, float, bool]]:
    """``(label, emulated ms, reference ms, ratio, held to target)`` per emulated profile."""
    raw = _raw_ort(model, threads)
    feeds = {"input": x}
    rows = []
    for label, device, opts, fp32 in WALL:
        opts = dict(opts)
        if opts.get("calibration") == "x":
            opts["calibration"] = [x]
        m = edgekit.load(model, device=device, emulate=True, threads=threads, **opts)
        for _ in range(5):
            m.run(feeds)
            raw(feeds)
        emu_t, ref_t = [], []
        for i in range(rounds):  # interleaved, alternating which goes first
            pair = [(emu_t, lambda: m.run(feeds)), (ref_t, lambda: raw(feeds))]
            for store, call in (pair if i % 2 == 0 else pair[::-1]):
                t0 = time.perf_counter_ns()
                call()
                store.append(time.perf_counter_ns() - t0)
        e, r = statistics.median(emu_t) / 1e6, statistics.median(ref_t) / 1e6
        rows.append((label, e, r, e / r, fp32))
        m.close()
    return rows


def calibration(folder: Path) -> list[tuple[str, CrossValidation, Fit, int]]:
    """Per device with published figures: leave-one-network-out before (hand-set) and after calibration."""
    out = []

    builder = graph_builder(folder)
    for device in load_figures(buildable=NETWORKS).devices():
        profile = get_profile(device)
        kept, _ = select_metric(select_runtime(load_figures(device, buildable=NETWORKS).figures, profile)[0])
        samples, _ = figure_samples(kept, profile, builder)
        _, base = hand_set(accelerator_spec(profile, samples[0].unit))
        out.append((device, cross_validate(samples, base), fit(samples, base), len({s.network for s in samples})))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=200, help="interleaved calls per profile (default 200)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip-wall", action="store_true", help="only the latency-model table")
    args = ap.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization's advice on the root logger
    folder = Path(tempfile.mkdtemp(prefix="edgekit-emulation-"))
    wall: list[tuple[str, float, float, float, bool]] = []
    if not args.skip_wall:
        model = build_network("mobilenet_v2", folder / "mobilenet_v2_224.onnx")
        x = np.random.default_rng(0).normal(0, 1, (1, 3, 224, 224)).astype(np.float32)
        print(f"1. wall time, MobileNet v2 (224x224, random weights), {args.rounds} interleaved calls, "
              f"{args.threads} threads; reference: raw onnxruntime InferenceSession.run")
        print(f"   {'emulated profile':<36} {'emulated':>10} {'reference':>10} {'ratio':>7}  target")
        wall = wall_ratios(model, x, args.rounds, args.threads)
        for label, e, r, ratio, held in wall:
            print(f"   {label:<36} {e:8.3f}ms {r:8.3f}ms {ratio:6.2f}x  {'<= 1.5x' if held else '(info)'}")
    cal = calibration(folder)
    print("\n2. latency model vs published figures (devices/emulation/calibration/, structurally equivalent graphs "
          "without weights), leave-one-network-out: predicted/published with the hand-set parameters (before) and "
          "with parameters fitted on the other networks (after)")
    print(f"   {'device':<20} {'network':<20} {'prec':<5} {'runtime':<15} {'metric':<10} {'published':>10} "
          f"{'before':>7} {'after':>7}")
    for device, cv, _, _ in cal:
        for smp, b, a in zip(cv.samples, cv.before, cv.after, strict=True):
            print(f"   {device:<20} {smp.network:<20} {smp.precision:<5} {smp.label:<15} {smp.metric:<10} "
                  f"{smp.ms:8.3f}ms {b:6.2f}x {a:6.2f}x")
    print(f"\n   {'device':<20} {'networks':>8} {'figures':>7}  LOO |error| median before -> after, worst before -> "
          "after; in-sample fit")
    parts = []
    for device, cv, f, nets in cal:
        m = cv.summary()
        print(f"   {device:<20} {nets:>8} {len(cv.samples):>7}  {m['before_median']:.0%} -> {m['after_median']:.0%}, "
              f"{m['before_worst']:.0%} -> {m['after_worst']:.0%}; fit median {f.median_error:.0%}")
        parts.append(f"{device} ({nets} networks) median {m['before_median']:.0%}->{m['after_median']:.0%}, worst "
                     f"{m['before_worst']:.0%}->{m['after_worst']:.0%}")
    fp32 = [r for *_, r, held in wall if held]
    wall_txt = (f"emulated/reference wall time (fp32 profiles): max {max(fp32):.2f}x, median "
                f"{statistics.median(fp32):.2f}x (target <= 1.5x); ") if fp32 else ""
    print(f"\n{wall_txt}latency model, leave-one-network-out |error| before->after calibration: " + "; ".join(parts))


if __name__ == "__main__":
    main()
