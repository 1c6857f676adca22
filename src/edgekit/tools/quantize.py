"""Quantize an ONNX model to int8 with ONNX Runtime's quantizer, and measure what it cost.

- :func:`quantize_static`: QDQ format (QuantizeLinear/DequantizeLinear pairs, which ONNX
  Runtime, OpenVINO, TensorRT and QNN all read), int8 weights (per channel where the opset
  allows: a model below opset 13 is converted with ``onnx.version_converter`` first, and
  falls back to per-tensor if that fails), uint8 activations calibrated (MinMax by default)
  on images or arrays (:mod:`edgekit.tools.calibration`).
- :func:`quantize_dynamic`: int8 weights, activations quantized at run time. Measure it: on
  an x86 CPU, ONNX Runtime ran dynamically quantized convolutions (ConvInteger) about 10x
  slower than float.
- :func:`tflite_status`: TFLite models are not re-quantized here; it says whether they already are.

Both return a :class:`QuantizeReport`: size, ONNX Runtime latency before and after (median of
interleaved runs, one thread by default), and the output drift against the float model on
held-out inputs (the last fifth of the calibration set, never used to calibrate, unless
``heldout`` is given; for dynamic quantization without inputs, synthetic image-like ones from
:func:`~edgekit.tools.verify.image_like_feeds`), with warnings when the result is slower, not
smaller or drifts far. ``report.inputs_source`` says what the drift was measured on.

Example::

    report = quantize_static("det.onnx", "det.int8.onnx", "images/", preprocess=Preprocess(size=(640, 640)))
    print(report.summary())
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InvalidOptionError, UnsupportedModelError
from edgekit.models.formats import open_model
from edgekit.tools.calibration import Preprocess, input_specs, load_calibration
from edgekit.tools.fp16 import constants_to_initializers
from edgekit.tools.outputs import claim_outputs
from edgekit.tools.verify import Drift, image_like_feeds, interleaved_latency, output_drift

__all__ = ["QuantizeReport", "quantize_dynamic", "quantize_static", "tflite_status"]

_TYPES = ("int8", "uint8")
PER_CHANNEL_OPSET = 13


@dataclass
class QuantizeReport:
    """What a quantization produced and what it cost."""

    source: str
    output: str
    method: str  # "static QDQ" | "dynamic"
    per_channel: bool
    opset_before: int
    opset_after: int
    size_before: int
    size_after: int
    calibration_inputs: int = 0
    heldout_inputs: int = 0
    inputs_source: str = ""  # what the drift was measured on, e.g. "8 synthetic image-like inputs (...)"
    latency_before_ms: float | None = None
    latency_after_ms: float | None = None
    threads: int = 1
    drift: list[Drift] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def size_ratio(self) -> float:
        return self.size_after / self.size_before if self.size_before else float("nan")

    @property
    def speedup(self) -> float | None:
        if self.latency_before_ms and self.latency_after_ms:
            return self.latency_before_ms / self.latency_after_ms
        return None

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in vars(self).items() if k != "drift"}
        d.update(drift=[x.to_dict() for x in self.drift], size_ratio=self.size_ratio, speedup=self.speedup)
        return d

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [f"{self.method} int8 ({'per-channel' if self.per_channel else 'per-tensor'} weights), opset "
                 f"{self.opset_before}" + (f" -> {self.opset_after}" if self.opset_after != self.opset_before else ""),
                 f"size: {self.size_before:,} -> {self.size_after:,} bytes ({self.size_ratio:.1%})"]
        if self.latency_before_ms is not None and self.latency_after_ms is not None:
            lines.append(f"latency (ONNX Runtime CPU, {self.threads} thread(s), median of interleaved runs): "
                         f"{self.latency_before_ms:.3g} -> {self.latency_after_ms:.3g} ms (x{self.speedup:.2f})")
        on = self.inputs_source or f"{self.heldout_inputs} held-out input(s)"
        lines += [f"drift on {on}: {d}" for d in self.drift]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def tflite_status(model: str | os.PathLike[str]) -> str:
    """Whether a TFLite model is already quantized, in a sentence."""
    from edgekit.models.precision import model_precision

    mf = open_model(model)
    prec = model_precision(mf)
    if prec == "int8":
        return f"{mf.path.name} is already int8-quantized; nothing to do."
    return (f"{mf.path.name} is a {prec} TFLite model and is not quantized. edgekit quantizes ONNX models; quantize "
            "TFLite models with the TFLite converter (post-training integer quantization), or quantize the ONNX "
            "model it came from.")


def _source(model: str | os.PathLike[str], output: str | os.PathLike[str], force: bool) -> tuple[Any, Any, int]:
    """The ONNX model to quantize, its proto and opset, once ``output`` is known to be writable."""
    import onnx

    mf = _onnx_only(model)
    claim_outputs([Path(output)], source=mf, force=force)  # never over the model, its data, or unasked
    proto = onnx.load(str(mf.path))
    return mf, proto, _opset(proto, mf.path.name)


def _onnx_only(model: str | os.PathLike[str]) -> Any:
    mf = open_model(model)
    if mf.format == "tflite":
        raise UnsupportedModelError(tflite_status(mf.path))
    if mf.format != "onnx":
        raise UnsupportedModelError(f"{mf.path.name}: edgekit quantizes ONNX models, not {mf.format}. Quantize the "
                                    "ONNX model this one came from, then convert it (`edgekit convert`).")
    from edgekit.models.precision import model_precision

    if model_precision(mf) == "int8":
        raise UnsupportedModelError(f"{mf.path.name} is already int8-quantized (it has quantization operators); "
                                    "quantize the float model instead.")
    return mf


def _opset(proto: Any, name: str) -> int:
    import onnx

    version = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    newest = onnx.defs.onnx_opset_version()
    if version < 7 or version > newest:
        raise UnsupportedModelError(
            f"{name} declares ONNX opset {version}; edgekit quantizes opsets 7 to {newest} (what the installed onnx "
            f"{onnx.__version__} knows). Re-export the model with an opset in that range"
            + (", or upgrade onnx." if version > newest else "."))
    return int(version)


def _convert_opset(proto: Any, target: int, name: str) -> Any:
    from onnx import version_converter

    try:
        return version_converter.convert_version(proto, target)
    except Exception as exc:
        raise UnsupportedModelError(f"{name}: onnx's version converter cannot take it to opset {target} ({exc}). "
                                    f"Re-export the model at opset >= {target}.") from exc


def _split(feeds: list[dict[str, np.ndarray]], heldout: list[dict[str, np.ndarray]] | None,
           warnings: list[str]) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    if heldout:
        return feeds, heldout
    if len(feeds) >= 5:
        k = max(1, len(feeds) // 5)
        return feeds[:-k], feeds[-k:]
    warnings.append(f"only {len(feeds)} calibration input(s): the drift is measured on the calibration inputs "
                    "themselves (give 5 or more, or `heldout`, for an honest figure)")
    return feeds, feeds


def _measure(report: QuantizeReport, source: Path, output: Path, feeds: list[dict[str, np.ndarray]],
             threads: int) -> None:
    from edgekit.predictor import load

    with load(source, runtime="onnxruntime", threads=threads) as a, \
            load(output, runtime="onnxruntime", threads=threads) as b:
        ref = [a.run(f) for f in feeds]
        got = [b.run(f) for f in feeds]
        report.drift = output_drift(ref, got)
        report.latency_before_ms, report.latency_after_ms = interleaved_latency([a, b], feeds[0])
    report.heldout_inputs, report.threads = len(feeds), threads
    if report.latency_after_ms > report.latency_before_ms * 1.05:
        report.warnings.append(
            f"the quantized model is SLOWER than the original on ONNX Runtime here ({report.latency_after_ms:.3g} vs "
            f"{report.latency_before_ms:.3g} ms): this CPU/runtime lacks fast kernels for what it produced"
            + (" (dynamic quantization turns Conv into ConvInteger, which runs slowly on x86)"
               if report.method == "dynamic" else "") + ". Do not deploy it for speed without measuring on the target.")
    if report.size_after >= report.size_before:
        report.warnings.append("the quantized model is not smaller than the original")
    for d in report.drift:
        if d.rel_l2 > 0.1 or (d.top1_agreement is not None and d.top1_agreement < 0.9):
            report.warnings.append(f"output {d.output!r} drifts far from the float model (rel L2 {d.rel_l2:.3g}); "
                                   "check accuracy on real data, use more representative calibration inputs, or "
                                   "exclude sensitive operators")


class _Reader:
    """An ONNX Runtime CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantize_static(model: str | os.PathLike[str], output: str | os.PathLike[str],
                    calibration: str | os.PathLike[str] | Iterable[Any], *, per_channel: bool = True,
                    preprocess: Preprocess | None = None, heldout: Iterable[Any] | None = None,
                    weight_type: str = "int8", activation_type: str = "uint8", method: str = "minmax",
                    exclude_ops: Sequence[str] = (), limit: int | None = None, measure: bool = True,
                    threads: int = 1, force: bool = False) -> QuantizeReport:
    """Static QDQ int8 quantization of an ONNX model, calibrated on ``calibration`` (see the module docstring).

    ``calibration``: a folder or file of images / ``.npy`` / ``.npz``, or a sequence of arrays or
    ``{input: array}`` dicts. ``method``: ``minmax``, ``entropy`` or ``percentile``.

    >>> quantize_static("cls.onnx", "cls.int8.onnx", "calib/").size_ratio   # doctest: +SKIP
    0.27
    """
    import onnx
    from onnxruntime import quantization as q

    if weight_type not in _TYPES or activation_type not in _TYPES:
        raise InvalidOptionError(f"weight_type and activation_type must be one of {_TYPES}, got "
                                 f"{weight_type!r}/{activation_type!r}.")
    methods = {"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
               "percentile": q.CalibrationMethod.Percentile}
    if method not in methods:
        raise InvalidOptionError(f"calibration method must be one of {sorted(methods)}, got {method!r}.")
    mf, proto, opset = _source(model, output, force)
    after = opset
    specs = input_specs(mf.path)
    warnings: list[str] = []
    feeds = load_calibration(calibration, specs, preprocess, limit=limit) if not isinstance(calibration, Mapping) \
        else load_calibration([calibration], specs)
    held = load_calibration(heldout, specs, preprocess) if heldout is not None else None
    calib, held = _split(feeds, held, warnings)
    if per_channel and opset < PER_CHANNEL_OPSET:
        try:
            proto, after = _convert_opset(proto, PER_CHANNEL_OPSET, mf.path.name), PER_CHANNEL_OPSET
        except UnsupportedModelError as exc:
            per_channel = False
            warnings.append(f"per-tensor weights: {exc}")
    qtype = {"int8": q.QuantType.QInt8, "uint8": q.QuantType.QUInt8}
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgekit-quant-") as tmp:
        prepared = Path(tmp, "prepared.onnx")
        onnx.save(constants_to_initializers(proto), str(prepared))
        _pre_process(q, prepared, warnings)
        tmp_out = Path(tmp, "quantized.onnx")
        try:
            q.quantize_static(str(prepared), str(tmp_out), _Reader(calib), quant_format=q.QuantFormat.QDQ,
                              per_channel=per_channel, activation_type=qtype[activation_type],
                              weight_type=qtype[weight_type], calibrate_method=methods[method],
                              op_types_to_quantize=_op_types(prepared, exclude_ops),
                              extra_options={"CalibTensorRangeSymmetric": False})
        except Exception as exc:
            raise UnsupportedModelError(f"ONNX Runtime could not quantize {mf.path.name}: {type(exc).__name__}: "
                                        f"{exc}. Try per_channel=False, exclude the failing operator types, or "
                                        "quantize dynamically.") from exc
        shutil.move(tmp_out, out)  # /tmp may be another file system
    report = QuantizeReport(str(mf.path), str(out), "static QDQ", per_channel, opset, after, mf.size,
                            out.stat().st_size, calibration_inputs=len(calib), warnings=warnings)
    if measure:
        _measure(report, mf.path, out, held, threads)
    return report


def _pre_process(q: Any, path: Path, warnings: list[str]) -> None:
    """ONNX Runtime's recommended pre-processing (shape inference, graph optimisation), in place."""
    import importlib.util

    symbolic = importlib.util.find_spec("sympy") is not None  # ORT's symbolic shape inference needs it
    try:
        q.quant_pre_process(str(path), str(path), skip_symbolic_shape=not symbolic)
    except Exception as exc:  # noqa: BLE001 - pre-processing only helps; quantize without it
        warnings.append(f"ONNX Runtime's quantization pre-processing failed ({type(exc).__name__}: "
                        f"{str(exc)[:120]}); quantized without it")


def _op_types(path: Path, exclude: Sequence[str]) -> list[str] | None:
    """The model's operator types minus ``exclude`` (None: quantize every type ONNX Runtime can)."""
    if not exclude:
        return None
    import onnx

    return sorted({n.op_type for n in onnx.load(str(path)).graph.node} - set(exclude))


def quantize_dynamic(model: str | os.PathLike[str], output: str | os.PathLike[str], *,
                     inputs: str | os.PathLike[str] | Iterable[Any] | None = None,
                     preprocess: Preprocess | None = None, per_channel: bool = False, weight_type: str = "int8",
                     dims: Mapping[str, Sequence[int]] | None = None, measure: bool = True,
                     threads: int = 1, force: bool = False) -> QuantizeReport:
    """Dynamic int8 quantization (weights only, activations at run time); measured on ``inputs``
    (like ``calibration`` above) or on 8 synthetic image-like inputs (dynamic dims from ``dims``;
    :func:`~edgekit.tools.verify.image_like_feeds`)."""
    from onnxruntime import quantization as q

    if weight_type not in _TYPES:
        raise InvalidOptionError(f"weight_type must be one of {_TYPES}, got {weight_type!r}.")
    mf, proto, opset = _source(model, output, force)
    after = opset
    warnings: list[str] = []
    if opset < 11:
        proto, after = _convert_opset(proto, 11, mf.path.name), 11
    specs = input_specs(mf.path)
    if inputs is not None:
        feeds = load_calibration(inputs, specs, preprocess)
        source = f"{len(feeds)} input(s) from {Path(inputs).name}" if isinstance(inputs, (str, os.PathLike)) else ""
    else:
        feeds, source = image_like_feeds(specs, 8, dims=dims)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgekit-quant-") as tmp:
        tmp_out = Path(tmp, "quantized.onnx")
        try:
            q.quantize_dynamic(constants_to_initializers(proto), str(tmp_out), per_channel=per_channel,
                               weight_type={"int8": q.QuantType.QInt8, "uint8": q.QuantType.QUInt8}[weight_type])
        except Exception as exc:
            raise UnsupportedModelError(f"ONNX Runtime could not quantize {mf.path.name} dynamically: "
                                        f"{type(exc).__name__}: {exc}. Try static quantization.") from exc
        shutil.move(tmp_out, out)  # /tmp may be another file system
    report = QuantizeReport(str(mf.path), str(out), "dynamic", per_channel, opset, after, mf.size,
                            out.stat().st_size, inputs_source=source, warnings=warnings)
    if measure:
        _measure(report, mf.path, out, feeds, threads)
    return report
