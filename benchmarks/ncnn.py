"""ncnn against ONNX Runtime, and ncnn's Vulkan path (a software device here) against its CPU, side by side.

Models: the bundled sample CNN, PP-OCR cls (1x3x48x192) and PP-OCR det (1x3x320x320), all ONNX; ncnn
reads them through pnnx (fetched from its pinned wheel first). For each: the pnnx conversion time
(a fresh cache), ncnn CPU vs ONNX Runtime p50 latency (both fp32, the same threads, interleaved in
blocks in one process so machine noise hits both) and parity (max relative error against ORT);
then ncnn on ``vulkan`` in fp32 and fp16 against ncnn's CPU output (max relative error; on
llvmpipe the latency says nothing about a GPU and is not reported). Relative error: max |a-b| /
max |reference|.

    python benchmarks/ncnn.py [--threads 2] [--blocks 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# `python benchmarks/ncnn.py` puts this folder first on sys.path, where this file would shadow the ncnn library
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402

import edgekit  # noqa: E402
from edgekit.models.sample import sample_model  # noqa: E402
from edgekit.testing.real_models import fetch  # noqa: E402


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - ref).max() / max(float(np.abs(ref).max()), 1e-12))


def interleaved(a: Callable[[], object], b: Callable[[], object], blocks: int, per_block: int = 5) -> tuple[float, float]:
    """Median over blocks of each callable's per-block median time (s), alternating which goes first."""
    for f in (a, b):
        for _ in range(3):
            f()
    ta, tb = [], []
    for i in range(blocks):
        for f, out in ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta)):
            times = []
            for _ in range(per_block):
                t0 = time.perf_counter_ns()
                f()
                times.append(time.perf_counter_ns() - t0)
            out.append(statistics.median(times) / 1e9)
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=15)
    args = ap.parse_args()
    from edgekit.registry import get_runtime
    from edgekit.runtimes.ncnn import vulkan_device
    from edgekit.runtimes.ncnn_convert import fetch_pnnx

    binary = fetch_pnnx()
    cache = Path(tempfile.mkdtemp(prefix="edgekit-ncnn-bench-"))
    (cache / "tools").mkdir(parents=True)
    (cache / "tools" / binary.name).write_bytes(binary.read_bytes())
    (cache / "tools" / binary.name).chmod(0o755)
    os.environ["EDGEKIT_CACHE"] = str(cache)  # fresh: every conversion below is timed
    has_vulkan = "vulkan" in get_runtime("ncnn").accelerators()
    print(f"vulkan device: {vulkan_device() or 'none (apt-get install mesa-vulkan-drivers libvulkan1)'}")
    models = [("sample", sample_model("onnx"), (1, 3, 96, 96)), ("ppocr-cls", fetch("ppocr-cls"), (1, 3, 48, 192)),
              ("ppocr-det", fetch("ppocr-det"), (1, 3, 320, 320))]
    summary = []
    for label, path, shape in models:
        x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
        t0 = time.perf_counter()
        ncnn = edgekit.load(path, runtime="ncnn", threads=args.threads, precision="fp32", probe=False)
        convert_s = time.perf_counter() - t0
        assert ncnn.placement.options["converted_now"]
        ort = edgekit.load(path, runtime="onnxruntime", threads=args.threads, precision="fp32")
        name = ort.outputs[0].name
        ref = ort(x)[name]
        cpu = ncnn(x)[name]
        parity = rel_err(cpu, ref)
        t_ort, t_ncnn = interleaved(lambda o=ort, v=x: o(v), lambda n=ncnn, v=x: n(v), args.blocks)
        row = f"{label}: convert {convert_s:.2f} s, p50 ncnn {t_ncnn * 1e3:.3f} ms vs ORT {t_ort * 1e3:.3f} ms " \
              f"(ratio {t_ncnn / t_ort:.2f}), rel err vs ORT {parity:.1e}"
        short = f"{label} ncnn/ORT {t_ncnn / t_ort:.2f}x err {parity:.0e} conv {convert_s:.1f}s"
        if has_vulkan:
            errs = {}
            for prec in ("fp32", "fp16"):
                with edgekit.load(path, runtime="ncnn", accelerator="vulkan", precision=prec, threads=args.threads,
                                  probe=False) as gpu:
                    errs[prec] = rel_err(gpu(x)[name], cpu)
            row += f"; vulkan vs CPU rel err fp32 {errs['fp32']:.1e}, fp16 {errs['fp16']:.1e}"
            short += f" vk32 {errs['fp32']:.0e} vk16 {errs['fp16']:.0e}"
        print(row, flush=True)
        summary.append(short)
        ncnn.close()
        ort.close()
    print(f"RESULT: threads={args.threads} cpu_count={os.cpu_count()}; " + "; ".join(summary))


if __name__ == "__main__":
    main()
