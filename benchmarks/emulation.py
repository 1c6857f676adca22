"""The emulated backend: its wall-time cost, and its latency model against published device figures.

1. Wall time. The emulated run of a model, as a ratio of the reference runtime's raw call on the
   same model (ONNX Runtime ``InferenceSession.run``, same threads, spinning off), interleaved
   call by call in one process; the ratio of the medians. Target (issue 4): at most 1.5x for fp32
   profiles. fp16 and int8 profiles are shown for information: they run a rewritten model (casts
   around every accelerator op; QDQ int8) and are not held to the target.
2. Fidelity of the latency model. Its predictions for device/model pairs whose latency the vendor
   publishes. The trained models cannot be fetched offline, so structurally equivalent ONNX models
   are built (:mod:`edgekit.testing.networks`: same layers, channels, strides and input size; random
   weights; BatchNorm folded), quantized with random calibration data where the figure is int8.
   Latency depends on topology and shapes, not on the weight values.

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
from edgekit.emulation.core import estimate_latency
from edgekit.testing.networks import build_network

#: (device, network, input size, precision of the figure, published ms, what was measured, source)
PUBLISHED = [
    ("coral-edgetpu", "mobilenet_v1", 224, "int8", 2.4, "USB Accelerator (USB 3.0) on a desktop CPU",
     "https://coral.ai/docs/edgetpu/benchmarks/ (Table 1)"),
    ("coral-edgetpu", "mobilenet_v2", 224, "int8", 2.6, "USB Accelerator (USB 3.0) on a desktop CPU",
     "https://coral.ai/docs/edgetpu/benchmarks/ (Table 1)"),
    ("coral-edgetpu", "resnet50", 299, "int8", 49.0, "USB Accelerator (USB 3.0) on a desktop CPU",
     "https://coral.ai/docs/edgetpu/benchmarks/ (Table 1, ResNet-50 V1 299x299)"),
    ("snapdragon-8-gen-3", "mobilenet_v2", 224, "int8", 0.376, "Samsung Galaxy S24, QNN, w8a8",
     "Qualcomm AI Hub: https://github.com/quic/ai-hub-models/blob/main/qai_hub_models/models/mobilenet_v2/perf_w8a8.yaml"),
    ("snapdragon-8-gen-3", "mobilenet_v2", 224, "fp16", 0.488, "Samsung Galaxy S24, ONNX Runtime QNN EP, float",
     "Qualcomm AI Hub: https://github.com/quic/ai-hub-models/blob/main/qai_hub_models/models/mobilenet_v2/perf_float.yaml"),
    ("snapdragon-8-gen-3", "resnet50", 224, "int8", 0.708, "Samsung Galaxy S24, QNN, w8a8",
     "Qualcomm AI Hub: https://github.com/quic/ai-hub-models/blob/main/qai_hub_models/models/resnet50/perf_w8a8.yaml"),
]

#: (label, device, options) emulated for the wall-time ratio; fp32 ones are held to the 1.5x target
WALL = [
    ("generic-x86-64 (cpu, fp32)", "generic-x86-64", {}, True),
    ("raspberry-pi-5 (cpu, fp32)", "raspberry-pi-5", {}, True),
    ("nvidia-rtx-4090 (cuda, fp32)", "nvidia-rtx-4090", {"accelerator": "cuda"}, True),
    ("jetson-orin-nano (tensorrt, fp16)", "jetson-orin-nano", {}, False),
    ("coral-edgetpu (edgetpu, int8)", "coral-edgetpu", {"calibration": "x"}, False),
]


def _raw_ort(path: Path, threads: int):  # noqa: ANN202
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


def predictions(folder: Path) -> list[tuple[str, str, int, str, float, float, str, str]]:
    """``(device, network, size, precision, predicted ms, published ms, measured on, source)`` per pair."""
    rows = []
    for device, net, size, prec, published, what, source in PUBLISHED:
        path = folder / f"{net}_{size}.onnx"
        if not path.exists():
            build_network(net, path, size)
        opts: dict[str, object] = {"precision": prec} if prec != "int8" else {
            "calibration": [np.random.default_rng(s).normal(0, 1, (1, 3, size, size)).astype(np.float32)
                            for s in range(2)]}
        est = estimate_latency(path, device, **opts)
        rows.append((device, net, size, est.precision, est.total_ms, published, what, source))
    return rows


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
    rows = predictions(folder)
    print("\n2. latency model vs published figures (structurally equivalent models, random weights)")
    print(f"   {'device':<20} {'model':<14} {'input':>5} {'prec':<5} {'predicted':>10} {'published':>10} {'pred/pub':>8}"
          "  measured on / source")
    for device, net, size, prec, pred, pub, what, source in rows:
        print(f"   {device:<20} {net:<14} {size:>5} {prec:<5} {pred:8.3f}ms {pub:8.3f}ms {pred / pub:7.2f}x  "
              f"{what}; {source}")
    ratios = [pred / pub for *_, pred, pub, _, _ in rows]
    errs = [abs(r - 1) for r in ratios]
    fp32 = [r for *_, r, held in wall if held]
    wall_txt = (f"emulated/reference wall time (fp32 profiles): max {max(fp32):.2f}x, median "
                f"{statistics.median(fp32):.2f}x (target <= 1.5x); ") if fp32 else ""
    print(f"\n{wall_txt}latency model vs {len(rows)} published figures: predicted/published "
          f"{min(ratios):.2f}x..{max(ratios):.2f}x, median |error| {statistics.median(errs) * 100:.0f}%")


if __name__ == "__main__":
    main()
