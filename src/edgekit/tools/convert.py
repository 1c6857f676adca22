"""Convert a model to another format or precision, and verify the result against the original.

================  ==========================  =====================================================
to                from                        how
================  ==========================  =====================================================
``openvino``      ONNX (and TFLite)           ``openvino.convert_model`` + ``save_model``; ``fp16``
                                              stores weights in float16 (``compress_to_fp16``)
``mnn``           ONNX, TFLite                MNN's converter in a subprocess
                                              (:func:`edgekit.runtimes.mnn_convert.convert_to_mnn`)
``onnx`` + fp16   ONNX                        :func:`edgekit.tools.fp16.convert_float_to_float16`
                                              (float32 inputs and outputs kept)
================  ==========================  =====================================================

Every conversion is verified: both models run on the same inputs (random, reproducible, or
given) — the original on its reference runtime (ONNX Runtime, LiteRT), the result on the
runtime that reads it (OpenVINO in f32, MNN, ONNX Runtime) — and the per-output difference is
reported (:class:`~edgekit.tools.verify.Drift`).

Example::

    report = convert_model("det.onnx", "det.xml", to="openvino", precision="fp16")
    print(report.summary())
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
from edgekit.tools.verify import Drift, output_drift, random_feeds

__all__ = ["TARGETS", "ConvertReport", "convert_model"]

#: target -> (source formats, precisions, suffix, runtime that verifies the result)
TARGETS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str, str]] = {
    "openvino": (("onnx", "tflite"), ("fp32", "fp16"), ".xml", "openvino"),
    "mnn": (("onnx", "tflite"), ("fp32",), ".mnn", "mnn"),
    "onnx": (("onnx",), ("fp16",), ".onnx", "onnxruntime"),
}

#: largest relative L2 error (||converted - original|| / ||original||) per output that verifies a conversion:
#: fp32 keeps the arithmetic (differences are reordering, ~1e-6); fp16 weights round to 11 bits (~1e-3)
MAX_REL_L2 = {"fp32": 1e-3, "fp16": 2e-2}


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
    drift: list[Drift] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in vars(self).items() if k != "drift"}
        d["drift"] = [x.to_dict() for x in self.drift]
        d["failures"] = self.failures()
        return d

    def failures(self) -> list[str]:
        """Outputs whose relative L2 error is over :data:`MAX_REL_L2` for this precision, or whose argmax flipped."""
        limit = MAX_REL_L2[self.precision]
        out = [f"{d.output}: rel L2 {d.rel_l2:.3g} > {limit:g}" for d in self.drift if not d.rel_l2 <= limit]
        out += [f"{d.output}: top-1 agreement {d.top1_agreement:.1%} < 100%" for d in self.drift
                if self.precision == "fp32" and d.top1_agreement is not None and d.top1_agreement < 1.0]
        return out

    def summary(self) -> str:
        lines = [f"{self.source} -> {self.output} ({self.to}, {self.precision})",
                 f"size: {self.size_before:,} -> {self.size_after:,} bytes"]
        if self.drift:
            lines.append(f"verified on {self.inputs_compared} input(s): {self.reference_runtime} (original) vs "
                         f"{self.verify_runtime} (converted)")
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
                  precision: str = "fp32", verify: bool = True,
                  inputs: Sequence[Mapping[str, np.ndarray]] | None = None,
                  dims: Mapping[str, Sequence[int]] | None = None, samples: int = 3,
                  force: bool = False) -> ConvertReport:
    """Convert ``model`` to ``to`` (``openvino``, ``mnn``, ``onnx``) and verify it (see the module docstring).

    ``output`` defaults to the model's name with the target's suffix (``.fp16.onnx`` for fp16 ONNX).
    ``inputs`` (list of feeds) or ``samples`` random feeds (dynamic dims from ``dims``, else 1).
    Never writes over the model or a file it uses; over an existing file only with ``force``
    (:func:`~edgekit.tools.outputs.claim_outputs`). ``report.failures()`` lists outputs whose
    drift is over :data:`MAX_REL_L2` (the CLI then exits 1).

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
    claim_outputs([out, out.with_suffix(".bin")] if to == "openvino" else [out], source=mf, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    if to == "openvino":
        _convert_openvino(mf.path, out, precision)
        if precision == "fp16":
            notes.append("weights stored in float16; OpenVINO computes in the precision the device asks for")
    elif to == "mnn":
        from edgekit.runtimes.mnn_convert import convert_to_mnn

        convert_to_mnn(mf.path, out, fmt=mf.format)
    else:
        from edgekit.tools.fp16 import convert_float_to_float16

        convert_float_to_float16(mf.path, out)
    report = ConvertReport(str(mf.path), str(out), to, precision, mf.size, open_model(out).size, notes=notes)
    if verify:
        _verify(report, mf, out, runtime, inputs, dims, samples)
    return report


def _verify(report: ConvertReport, mf: Any, out: Path, runtime: str,
            inputs: Sequence[Mapping[str, np.ndarray]] | None, dims: Mapping[str, Sequence[int]] | None,
            samples: int) -> None:
    from edgekit.errors import EdgekitError
    from edgekit.predictor import load

    reference = REFERENCE_RUNTIMES[mf.format]
    try:
        converted = load(out, runtime=runtime, threads=1, precision="fp32")
    except EdgekitError as exc:
        if report.to != "mnn":
            raise
        # MNN cannot load some .mnn files whose inputs are dynamic (it cannot infer output shapes); the
        # adapter converting the source with the same converter keeps the source's I/O and can.
        converted = load(mf.path, runtime="mnn", threads=1, precision="fp32")
        report.notes.append(f"MNN cannot open {out.name} by itself ({' '.join(str(exc).split())[:160]}); verified "
                            "the same conversion through edgekit.load(source, runtime='mnn'), which feeds it with "
                            "the source's input shapes")
    with load(mf.path, runtime=reference, threads=1) as a, converted as b:
        feeds = list(inputs) if inputs is not None else random_feeds(a.inputs, samples, dims=dims)
        ref = [a.run(f) for f in feeds]
        got = [b.run(_for(b, f, a)) for f in feeds]
    report.reference_runtime, report.verify_runtime, report.inputs_compared = reference, runtime, len(feeds)
    report.drift = output_drift(ref, got)


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
