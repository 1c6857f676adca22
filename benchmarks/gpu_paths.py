"""GPU code paths: ncnn against ONNX Runtime, ncnn's Vulkan path and OpenCV's OpenCL path (software devices here).

Models: the bundled sample CNN, PP-OCR cls (1x3x48x192) and PP-OCR det (1x3x320x320), all ONNX; ncnn
reads them through pnnx (fetched from its pinned wheel first). For each: the pnnx conversion time
(a fresh cache), ncnn CPU vs ONNX Runtime p50 latency (both fp32, the same threads, interleaved in
blocks in one process so machine noise hits both) and parity (max relative error against ORT);
then ncnn on ``vulkan`` in fp32 and fp16 against ncnn's CPU output (max relative error; on
llvmpipe the latency says nothing about a GPU and is not reported); then OpenCV DNN on ``opencl``
(PoCL's CPU device here: ``apt-get install pocl-opencl-icd ocl-icd-libopencl1``) in fp32, and fp16
where the device computes it, against OpenCV's CPU output. Relative error: max |a-b| / max |reference|.
(Named gpu_paths.py, not ncnn.py: run as a script, a file named ncnn.py would shadow the ncnn library.)

    python benchmarks/gpu_paths.py [--threads 2] [--blocks 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import edgekit
from edgekit.models.sample import sample_model
from edgekit.testing.real_models import fetch


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - ref).max() / max(float(np.abs(ref).max()), 1e-12))


def interleaved(a: Callable[[], object], b: Callable[[], object], blocks: int, per_block: int = 5) -> tuple[float, float]:
    """Median over blocks of each callable's per-block median time (s), alternating which goes first."""
    for f in (a, b):
        for _ in range(3):
            f()
    ta: list[float] = []
    tb: list[float] = []
    for i in range(blocks):
        for f, out in ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta)):
            times = []
            for _ in range(per_block):
                t0 = time.perf_counter_ns()
                f()
                times.append(time.perf_counter_ns() - t0)
            out.append(statistics.median(times) / 1e9)
    return statistics.median(ta), statistics.median(tb)


def opencl_parity(path: Path, x: np.ndarray, threads: int) -> str:
    """OpenCV on ``opencl`` vs OpenCV on the CPU: max relative error in fp32, and fp16 where offered."""
    from edgekit.errors import EdgekitError

    try:
        with edgekit.load(path, runtime="opencv", accelerator="cpu", threads=threads) as cpu:
            ref = next(iter(cpu.run({cpu.inputs[0].name: x}).values()))
        errs = []
        for prec in get_runtime("opencv").precisions("opencl"):
            with edgekit.load(path, runtime="opencv", accelerator="opencl", precision=prec, threads=threads,
                              allow_fallback=False) as m:
                errs.append(f"{prec} {rel_err(next(iter(m.run({m.inputs[0].name: x}).values())), ref):.1e}")
        if "fp16" not in get_runtime("opencv").precisions("opencl"):
            errs.append("fp16 n/a (no cl_khr_fp16)")
    except EdgekitError as exc:
        return f"ocl error: {' '.join(str(exc).split())[:120]}"
    return "ocl " + ", ".join(errs)


def get_runtime(name: str) -> Any:
    from edgekit.registry import get_runtime as get

    return get(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=15)
    args = ap.parse_args()
    from edgekit.runtimes.ncnn import vulkan_device
    from edgekit.runtimes.ncnn_convert import fetch_pnnx
    from edgekit.runtimes.opencv import opencl_device

    binary = fetch_pnnx()
    cache = Path(tempfile.mkdtemp(prefix="edgekit-ncnn-bench-"))
    (cache / "tools").mkdir(parents=True)
    (cache / "tools" / binary.name).write_bytes(binary.read_bytes())
    (cache / "tools" / binary.name).chmod(0o755)
    os.environ["EDGEKIT_CACHE"] = str(cache)  # fresh: every conversion below is timed
    has_vulkan = "vulkan" in get_runtime("ncnn").accelerators()
    print(f"vulkan device: {vulkan_device() or 'none (apt-get install mesa-vulkan-drivers libvulkan1)'}")
    ocl = opencl_device()
    print(f"opencl device: {ocl['description'] if ocl else 'none (apt-get install pocl-opencl-icd ocl-icd-libopencl1)'}")
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
        t_ort, t_ncnn = interleaved(partial(ort, x), partial(ncnn, x), args.blocks)
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
        if ocl:
            ocl_text = opencl_parity(path, x, args.threads)
            row += f"; OpenCV {ocl_text} vs its CPU"
            short += f" {ocl_text}"
        print(row, flush=True)
        summary.append(short)
        ncnn.close()
        ort.close()
    print(f"RESULT: threads={args.threads} cpu_count={os.cpu_count()}; " + "; ".join(summary))


if __name__ == "__main__":
    main()
