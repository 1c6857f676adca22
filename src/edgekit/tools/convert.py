"""Convert a model to another format or precision, and verify the result against the original.

================  ==========================  =====================================================
to                from                        how
================  ==========================  =====================================================
``openvino``      ONNX (and TFLite)           ``openvino.convert_model`` + ``save_model``; ``fp16``
                                              stores weights in float16 (``compress_to_fp16``)
``mnn``           ONNX, TFLite                MNN's converter in a subprocess
                                              (:func:`edgekit.runtimes.mnn_convert.convert_to_mnn`)
``ncnn``          ONNX                        pnnx's converter binary in a subprocess, ``.param`` +
                                              ``.bin`` (:func:`edgekit.runtimes.ncnn_convert.convert_to_ncnn`)
``onnx`` + fp16   ONNX                        :func:`edgekit.tools.fp16.convert_float_to_float16`
                                              (float32 inputs and outputs kept)
================  ==========================  =====================================================

Every conversion is verified: both models run on the same inputs — the original on its
reference runtime (ONNX Runtime, LiteRT), the result on the runtime that reads it (OpenVINO in
f32, MNN, ncnn, ONNX Runtime) — and the per-output difference is reported
(:class:`~edgekit.tools.verify.Drift`). The inputs are the caller's (``inputs``: arrays, or
files and folders of images / ``.npy`` / ``.npz`` read by
:func:`~edgekit.tools.calibration.load_calibration`), else ``samples`` synthetic image-like ones
(:func:`~edgekit.tools.verify.image_like_feeds`: random noise hides what reduced precision does
to a real image); ``report.inputs_source`` says which. An output passes when
``max |converted - original| <= max(atol, rtol x max |original|)`` with ``load(verify=True)``'s
tolerance for the precision (:data:`edgekit.verification.TOLERANCES`: fp16 is the reduced-precision
one), and, for fp32, every argmax of an ``[N, C]`` output agrees. A written file its runtime cannot
open fails the verification (``report.load_error``), as ``edgekit run`` on it would.

An fp16 ONNX model is checked with its float16 rounding kept
(:func:`~edgekit.tools.fp16.emulate_float16`): ONNX Runtime's CPU runs its operators in float32 and
drops the rounding between them, which hid a 0.07 drift as 0 on a Conv->Sigmoid model. An fp16
OpenVINO IR is checked with OpenVINO computing in f32 (the weights' rounding; a note says so).

Example::

    report = convert_model("det.onnx", "det.xml", to="openvino", precision="fp16")
    print(report.summary())       # ... verified on 8 synthetic image-like inputs (...) ...
    convert_model("det.onnx", to="onnx", precision="fp16", inputs="frames/")   # verified on your frames
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.catalog import REFERENCE_RUNTIMES
from edgekit.errors import InvalidOptionError, UnsupportedModelError
from edgekit.models.formats import open_model
from edgekit.tools.outputs import claim_outputs
from edgekit.tools.verify import Drift, image_like_feeds, output_drift
from edgekit.verification import TOLERANCES

__all__ = ["TARGETS", "ConvertReport", "convert_model", "tolerance"]

#: target -> (source formats, precisions, suffix, runtime that verifies the result)
TARGETS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str, str]] = {
    "openvino": (("onnx", "tflite"), ("fp32", "fp16"), ".xml", "openvino"),
    "mnn": (("onnx", "tflite"), ("fp32",), ".mnn", "mnn"),
    "ncnn": (("onnx",), ("fp32",), ".param", "ncnn"),  # + the .bin beside the .param
    "onnx": (("onnx",), ("fp16",), ".onnx", "onnxruntime"),
}

#: files written beside the output, by its suffix (weights)
_COMPANIONS: dict[str, tuple[str, ...]] = {".xml": (".bin",), ".param": (".bin",)}

Inputs = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Sequence[Mapping[str, np.ndarray]]


def tolerance(precision: str, peak: float) -> float:
    """The largest max |diff| an output whose reference peaks at ``peak`` may have (see the module docstring)."""
    atol, rtol = TOLERANCES[precision]
    return max(atol, rtol * peak)


@dataclass
class ConvertReport:
    """A conversion and its verification."""

    source: str
    output: str
    to: str
    precision: str
    size_before: int
    size_after: int
    reference_runtime: str = ""
    verify_runtime: str = ""
    inputs_compared: int = 0
    inputs_source: str = ""  # what the check ran on: "8 synthetic image-like inputs (...)", "frame.npy"
    load_error: str = ""  # why the verifying runtime cannot open the written file (a failure)
    drift: list[Drift] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in vars(self).items() if k != "drift"}
        d["drift"] = [x.to_dict() for x in self.drift]
        d["failures"] = self.failures()
        return d

    def failures(self) -> list[str]:
        """Outputs over :func:`tolerance` for this precision, or (fp32) whose argmax flipped."""
        atol, rtol = TOLERANCES[self.precision]
        out = [f"{self.verify_runtime} cannot open {Path(self.output).name}: {self.load_error}"] if self.load_error else []
        out += [f"{d.output}: max |diff| {d.max_abs:.3g} > {tolerance(self.precision, d.peak):.3g} (the {self.precision} "
               f"tolerance: max({atol:g}, {rtol:g} x the original's peak {d.peak:.3g}))"
               for d in self.drift if not d.max_abs <= tolerance(self.precision, d.peak)]
        out += [f"{d.output}: top-1 agreement {d.top1_agreement:.1%} < 100%" for d in self.drift
                if self.precision == "fp32" and d.top1_agreement is not None and d.top1_agreement < 1.0]
        return out

    def summary(self) -> str:
        lines = [f"{self.source} -> {self.output} ({self.to}, {self.precision})",
                 f"size: {self.size_before:,} -> {self.size_after:,} bytes"]
        if self.drift:
            lines.append(f"verified on {self.inputs_source or f'{self.inputs_compared} input(s)'}: "
                         f"{self.reference_runtime} (original) vs {self.verify_runtime} (converted)")
            lines += [f"  {d}" for d in self.drift]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"VERIFICATION FAILED: {f}" for f in self.failures()]
        return "\n".join(lines)


def _convert_openvino(src: Path, out: Path, precision: str) -> None:
    from edgekit.runtimes.openvino import import_openvino

    try:
        ov = import_openvino()
    except ImportError as exc:
        from edgekit.errors import RuntimeNotInstalledError

        raise RuntimeNotInstalledError(
            "converting to OpenVINO IR needs OpenVINO: pip install 'edgekit[openvino]'") from exc
    try:
        model = ov.convert_model(str(src))
        ov.save_model(model, str(out), compress_to_fp16=precision == "fp16")
    except Exception as exc:
        raise UnsupportedModelError(f"OpenVINO cannot convert {src.name}: {type(exc).__name__}: "
                                    f"{' '.join(str(exc).split())[:600]}. `edgekit check {src.name}` shows which "
                                    "operators OpenVINO lacks.") from exc


def convert_model(model: str | os.PathLike[str], output: str | os.PathLike[str] | None = None, *, to: str,
                  precision: str = "fp32", verify: bool = True, inputs: Inputs | None = None,
                  dims: Mapping[str, Sequence[int]] | None = None, samples: int = 8,
                  force: bool = False, inputs_source: str | None = None) -> ConvertReport:
    """Convert ``model`` to ``to`` (``openvino``, ``mnn``, ``ncnn``, ``onnx``) and verify it (see the module docstring).

    ``output`` defaults to the model's name with the target's suffix (``.fp16.onnx`` for fp16 ONNX).
    ``inputs``: feeds (dicts by input name; ``inputs_source`` describes them), or image / ``.npy`` /
    ``.npz`` files and folders (images scaled to [0, 1], resized to the input's size or ``dims``);
    else ``samples`` synthetic image-like feeds (dynamic dims from ``dims``). Never writes over the
    model or a file it uses; over an existing file only with ``force``
    (:func:`~edgekit.tools.outputs.claim_outputs`). ``report.failures()`` lists outputs over
    :func:`tolerance` (the CLI then exits 1).

    >>> convert_model("cls.onnx", to="openvino").drift[0].max_abs   # doctest: +SKIP
    1.2e-07
    """
    if to not in TARGETS:
        raise InvalidOptionError(f"unknown conversion target {to!r}; edgekit converts to {sorted(TARGETS)}.")
    sources, precisions, suffix, runtime = TARGETS[to]
    mf = open_model(model)
    if mf.format not in sources:
        raise UnsupportedModelError(f"{mf.path.name}: edgekit converts {', '.join(sources)} models to {to}, "
                                    f"not {mf.format}.")
    if precision not in precisions:
        hint = " (ONNX to ONNX converts to fp16 only)." if to == "onnx" else "."
        raise InvalidOptionError(f"converting to {to} supports precision {list(precisions)}, got {precision!r}{hint}")
    default = mf.path.with_name(mf.path.stem + (".fp16" if to == "onnx" else "") + suffix)
    out = Path(output) if output else default
    if out.suffix.lower() != suffix:
        raise InvalidOptionError(f"the output of a conversion to {to} must end in {suffix}, got {out.name}.")
    claim_outputs([out, *(out.with_suffix(c) for c in _COMPANIONS.get(suffix, ()))], source=mf, force=force)
    feeds, source = _feeds(mf, inputs, inputs_source, dims, samples) if verify else ([], "")  # bad inputs: before writing
    out.parent.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    if to == "openvino":
        _convert_openvino(mf.path, out, precision)
        if precision == "fp16":
            notes.append("weights stored in float16; verified with OpenVINO computing in f32, so the check covers the "
                         "weights' rounding: on a device that computes in fp16 the drift is larger (`edgekit profile "
                         f"{out.name} --precision fp16` measures it there)")
    elif to == "mnn":
        from edgekit.runtimes.mnn_convert import convert_to_mnn

        convert_to_mnn(mf.path, out, fmt=mf.format)
    elif to == "ncnn":
        from edgekit.runtimes.ncnn_convert import convert_to_ncnn

        seconds = convert_to_ncnn(mf, out, out.with_suffix(".bin"))
        notes.append(f"converted by pnnx in {seconds:.1f} s; weights in {out.with_suffix('.bin').name}")
    else:
        from edgekit.tools.fp16 import convert_float_to_float16

        convert_float_to_float16(mf.path, out)
    report = ConvertReport(str(mf.path), str(out), to, precision, mf.size, open_model(out).size, notes=notes)
    if verify:
        _verify(report, mf, out, runtime, feeds, source)
    return report


def _feeds(mf: Any, inputs: Inputs | None, source: str | None, dims: Mapping[str, Sequence[int]] | None,
           samples: int) -> tuple[list[dict[str, np.ndarray]], str]:
    """The verification feeds and what they are: the caller's (arrays, or files read as calibration data with
    ``dims`` fixing dynamic sizes: "frame.npy", "12 file(s) in frames/"), else synthetic image-like ones."""
    import dataclasses

    from edgekit.models.model_io import model_io
    from edgekit.tools.calibration import load_calibration

    io = model_io(mf)
    specs = io[0] if io is not None else []
    unknown = sorted(set(dims or {}) - {s.name for s in specs})
    if unknown:
        raise InvalidOptionError(f"--shape for {unknown}: {mf.path.name} has no such input; its inputs are "
                                 f"{[s.name for s in specs]}.")
    if inputs is None:
        return image_like_feeds(specs, samples, dims=dims)
    items: list[Any] = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if items and all(isinstance(i, Mapping) for i in items):
        return [dict(i) for i in items], source or f"{len(items)} given input(s)"
    if not items or not all(isinstance(i, (str, os.PathLike)) for i in items):
        raise InvalidOptionError("inputs: expected feeds (dicts of arrays by input name) or paths of images, .npy or "
                                 ".npz files or folders of them, not a mix.")
    given = dict(dims or {})
    fixed = [dataclasses.replace(s, shape=tuple(given[s.name])) if s.name in given else s for s in specs]
    feeds: list[dict[str, np.ndarray]] = []
    names = []
    for item in items:
        path = Path(item).expanduser()
        got = load_calibration(path, fixed)
        feeds += got
        names.append(path.name if path.is_file() else f"{len(got)} file(s) in {path.name}/")
    return feeds, source or ", ".join(names)


def _verify(report: ConvertReport, mf: Any, out: Path, runtime: str, feeds: list[dict[str, np.ndarray]],
            source: str) -> None:
    """Run both models on ``feeds``; a converted file its runtime cannot open fails the verification."""
    from edgekit.errors import EdgekitError
    from edgekit.predictor import load

    reference = REFERENCE_RUNTIMES[mf.format]
    report.reference_runtime, report.verify_runtime, report.inputs_source = reference, runtime, source
    try:
        converted = load(out, runtime=runtime, threads=1, precision="fp32")
    except EdgekitError as exc:  # what `edgekit run` on the written file would meet
        report.load_error = " ".join(str(exc).split())
        return
    with load(mf.path, runtime=reference, threads=1) as a, converted as b:
        ref = [a.run(f) for f in feeds]
        got = [b.run(_for(b, f, a)) for f in feeds]
        if report.to == "onnx":  # float16 ONNX: ONNX Runtime's CPU would hide the float16 rounding
            as_is = max((d.max_abs for d in output_drift(ref, got)), default=0.0)
            got = _float16_runs(out, feeds, a)
            report.notes.append(
                f"ONNX Runtime's CPU runs a float16 model's operators in float32 and drops the rounding between "
                f"them (the file as is: max |diff| {as_is:.3g} here); the check above rounds every float16 tensor "
                "as a float16 device does (edgekit.tools.fp16.emulate_float16)")
    report.inputs_compared = len(feeds)
    report.drift = output_drift(ref, got)


def _float16_runs(out: Path, feeds: list[dict[str, np.ndarray]], a: Any) -> list[dict[str, np.ndarray]]:
    """Outputs of the float16 ONNX ``out`` with its float16 rounding kept (:func:`emulate_float16`)."""
    import tempfile

    import onnx

    from edgekit.predictor import load
    from edgekit.tools.fp16 import emulate_float16

    with tempfile.TemporaryDirectory(prefix="edgekit-fp16-") as tmp:
        path = Path(tmp, out.name)
        onnx.save(emulate_float16(onnx.load(str(out))), str(path))
        with load(path, runtime="onnxruntime", threads=1, precision="fp32") as b:
            return [b.run(_for(b, f, a)) for f in feeds]


def _for(b: Any, feed: Mapping[str, np.ndarray], a: Any) -> dict[str, np.ndarray]:
    """The feed for the converted model: by position when its input names differ (MNN renames some)."""
    names = [s.name for s in b.inputs]
    if set(names) == set(feed):
        return dict(feed)
    values = [feed[s.name] for s in a.inputs]
    if len(values) != len(names):
        raise UnsupportedModelError(f"the converted model has {len(names)} inputs, the original {len(values)}; "
                                    "the conversion changed the model's interface.")
    return dict(zip(names, values))
