"""Per-call overhead of ``Predictor.run`` against each runtime's own raw call, measured side by side.

For a 1-op model (ReLU on 1x64; ONNX, and TFLite for LiteRT) and for PP-OCR cls (ONNX; BlazeFace
for LiteRT, which cannot read ONNX), the raw call is written against the runtime's own Python
API with the same settings edgekit uses (1 thread, f32, spinning off). Calls are interleaved in
blocks (raw then edgekit, edgekit then raw, …) in one process so machine noise hits both; we report medians of
per-block means. Also ``python -X importtime -c "import edgekit"``.

Targets (issue 2): ≤ 5 µs per call on the 1-op model, ≤ 1 % on PP-OCR cls, import ≤ 100 ms.

    python benchmarks/overhead.py [--blocks 30] [--runtime onnxruntime ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import edgekit
from edgekit.models.build import save_onnx
from edgekit.testing.real_models import fetch


def one_op_onnx(folder: Path) -> Path:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])
    return save_onnx(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y]), folder / "relu.onnx")


def one_op_tflite(folder: Path) -> Path:
    from edgekit.testing.tflite_models import OpDef, TensorDef, write_tflite

    return write_tflite([TensorDef("x", [1, 64]), TensorDef("y", [1, 64])], [OpDef("RELU", [0], [1])], [0], [1],
                       folder / "relu.tflite")


# --- raw calls, written against each library directly ------------------------------------------

def raw_onnxruntime(path: Path, feeds: dict[str, np.ndarray]) -> Callable[[], object]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return lambda: sess.run(None, feeds)


def raw_litert(path: Path, feeds: dict[str, np.ndarray]) -> Callable[[], object]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    ins = [(d["index"], x) for d, x in zip(it.get_input_details(), feeds.values())]
    outs = [d["index"] for d in it.get_output_details()]

    def call() -> object:
        for idx, x in ins:
            it.set_tensor(idx, x)
        it.invoke()
        return [it.get_tensor(i) for i in outs]
    return call


def raw_openvino(path: Path, feeds: dict[str, np.ndarray]) -> Callable[[], object]:
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                          "INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY"})
    req = compiled.create_infer_request()
    ins = [(req.get_input_tensor(i), x) for i, x in enumerate(feeds.values())]
    for tensor, x in ins:
        tensor.shape = x.shape
    n = len(compiled.outputs)

    def call() -> object:  # the fastest raw call we found: write into the request's tensors
        for tensor, x in ins:
            tensor.data[...] = x
        req.infer()
        return [req.get_output_tensor(i).data.copy() for i in range(n)]
    return call


def raw_opencv(path: Path, feeds: dict[str, np.ndarray]) -> Callable[[], object]:
    import cv2

    cv2.setNumThreads(1)
    net = cv2.dnn.readNet(str(path))
    names = net.getUnconnectedOutLayersNames()

    def call() -> object:
        for k, v in feeds.items():
            net.setInput(v, k)
        return net.forward(names)
    return call


def raw_mnn(path: Path, feeds: dict[str, np.ndarray]) -> Callable[[], object]:
    import MNN

    from edgekit.runtimes.mnn import convert_to_mnn

    mnn_path = Path(tempfile.mkdtemp()) / (path.stem + ".mnn")
    convert_to_mnn(path, mnn_path)
    F = MNN.expr
    rt = MNN.nn.create_runtime_manager(({"backend": "CPU", "numThread": 1, "precision": 1},))
    rt.set_hint(MNN.nn.Hint.WinogradMemoryLevel, 2) if hasattr(MNN.nn, "Hint") else None
    module = MNN.nn.load_module_from_file(str(mnn_path), list(feeds), [], runtime_manager=rt)

    def call() -> object:
        args = []
        for x in feeds.values():
            v = F.placeholder(list(x.shape), F.NCHW, F.float)
            v.write(x)
            args.append(v)
        return [np.array(F.convert(o, F.NCHW).read(), copy=True) for o in module.forward(args)]
    return call


RAW = {"onnxruntime": raw_onnxruntime, "litert": raw_litert, "openvino": raw_openvino,
       "opencv": raw_opencv, "mnn": raw_mnn}


def interleaved(raw: Callable[[], object], ours: Callable[[], object], blocks: int, budget_s: float) -> tuple[float, float]:
    """Median per-call seconds of (raw, ours), interleaved in blocks sized to ~budget_s/blocks/2."""
    for _ in range(20):
        raw(), ours()
    t0 = time.perf_counter()
    raw()
    per = max(time.perf_counter() - t0, 1e-7)
    n = max(1, min(2000, int(budget_s / blocks / 2 / per)))
    r, o = [], []
    for i in range(blocks):  # alternate which goes first: the second of a pair runs on warmer caches
        for fn, acc in (((raw, r), (ours, o)) if i % 2 == 0 else ((ours, o), (raw, r))):
            t = time.perf_counter_ns()
            for _ in range(n):
                fn()
            acc.append((time.perf_counter_ns() - t) / n / 1e9)
    return statistics.median(r), statistics.median(o)


def import_time_ms(repeats: int = 5) -> float:
    """Median cumulative import time of edgekit from ``-X importtime``, in ms."""
    times = []
    for _ in range(repeats):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import edgekit"],
                             capture_output=True, text=True, check=True).stderr
        line = [ln for ln in err.splitlines() if ln.rstrip().endswith("| edgekit")][-1]
        times.append(int(line.split("|")[1]) / 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=30)
    ap.add_argument("--budget", type=float, default=6.0, help="seconds per runtime and model")
    ap.add_argument("--runtime", action="append", choices=sorted(RAW))
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    tiny = {"x": rng.normal(size=(1, 64)).astype(np.float32)}
    cls = {"x": rng.normal(size=(1, 3, 48, 192)).astype(np.float32)}
    face = {"input": rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)}
    rows = []
    for name in args.runtime or list(RAW):
        small = one_op_tflite(folder) if name == "litert" else one_op_onnx(folder)
        big, big_feeds, big_name = ((fetch("blazeface"), face, "BlazeFace") if name == "litert"
                                    else (fetch("ppocr-cls"), cls, "PP-OCR cls"))
        for label, path, feeds in (("1-op", small, tiny), (big_name, big, big_feeds)):
            pred = edgekit.load(path, runtime=name, threads=1, precision="fp32")
            feeds = dict(zip([s.name for s in pred.inputs], feeds.values()))
            raw = RAW[name](path, feeds)
            r, o = interleaved(raw, lambda: pred.run(feeds), args.blocks, args.budget)
            rows.append((name, label, r * 1e6, o * 1e6, (o - r) * 1e6, o / r))
            print(f"{name:12s} {label:11s} raw {r * 1e6:9.1f} us  edgekit {o * 1e6:9.1f} us  "
                  f"overhead {(o - r) * 1e6:+7.2f} us  ratio {o / r:.4f}", flush=True)
            pred.close()
    imp = import_time_ms()
    print(f"import edgekit: {imp:.1f} ms (median of 5, -X importtime)")
    one = [r for r in rows if r[1] == "1-op"]
    big = [r for r in rows if r[1] != "1-op"]
    print(f"RESULT: 1-op overhead median {statistics.median(r[4] for r in one):+.2f} us "
          f"(max {max(r[4] for r in one):+.2f} us, {max(one, key=lambda r: r[4])[0]}); "
          f"real-model overhead median {(statistics.median(r[5] for r in big) - 1) * 100:+.2f}% "
          f"(max {(max(r[5] for r in big) - 1) * 100:+.2f}%); import {imp:.0f} ms; cpu_count={os.cpu_count()}")


if __name__ == "__main__":
    main()
