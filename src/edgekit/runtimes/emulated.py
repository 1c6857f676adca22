"""The emulated runtime: run a model as a device profile's accelerator would, on this CPU.

A real reference runtime does the arithmetic (ONNX Runtime for ONNX, LiteRT for TFLite) on a
model that :mod:`edgekit.emulation` prepared for the profile's target: its operators
partitioned with the accelerator's operator list (the rest fall back to the CPU, as delegates
and execution providers do), int8-only accelerators run the model quantized, fp16 ones round
weights and activations through fp16, static shapes and memory are checked. The session also
predicts the device's latency (:meth:`EmulatedSession.estimate`, ``Predictor.estimate()``).

Options: ``device`` (profile name, ``.toml`` path or profile; default ``generic-x86-64``),
``unit`` (emulate the target on that unit), ``calibration`` (samples to quantize a float model
for an int8-only accelerator), ``input_shapes`` (fix dynamic ONNX inputs), ``strict`` (raise on
any op that would fall back to the CPU). ``accelerator=`` picks the target by its accelerator.

Example::

    m = edgekit.load("det.onnx", device="coral-edgetpu", emulate=True, calibration=samples)
    print(m.placement.explain())
    print(m.estimate())
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.catalog import REFERENCE_RUNTIMES
from edgekit.models.formats import ModelFile, open_model
from edgekit.runtime import Runtime, Session

__all__ = ["Emulated", "EmulatedSession"]


class EmulatedSession(Session):
    """A reference-runtime session over the prepared model, plus the emulation that made it."""

    def __init__(self, inner: Session, emulation: Any, options: dict[str, Any]) -> None:
        super().__init__(inner.inputs, inner.outputs, accelerator=emulation.target.accelerator,
                         precision=emulation.precision, options=options)
        self._inner = inner
        self.emulation = emulation
        self.thread_safe = inner.thread_safe

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._inner.run(feeds)

    def estimate(self) -> Any:
        """Predicted latency of one inference on the device (:class:`edgekit.emulation.latency.Estimate`)."""
        return self.emulation.estimate()

    def close(self) -> None:
        self._inner.close()


class Emulated(Runtime):
    """Device emulation over ONNX Runtime (ONNX) and LiteRT (TFLite)."""

    name = "emulated"
    capabilities = frozenset({"estimate", "dynamic_shapes", "multi_output", "int8"})
    #: ``edgekit profile`` without --runtime measures it only when named (it would duplicate its reference)
    picked_by_default = False
    default_accelerator = "auto"
    options_help = {
        "device": "device profile to emulate: name, path to a .toml, or a DeviceProfile (default generic-x86-64)",
        "unit": "emulate the profile's target on this unit (e.g. 'npu', 'gpu', 'cpu')",
        "calibration": "iterable of input samples: quantize a float ONNX model for an int8-only accelerator",
        "input_shapes": "dict input name -> fixed shape, for targets that need static shapes",
        "strict": "bool: raise, naming each op, when any op would fall back to the CPU",
    }

    def is_installed(self) -> bool:
        from edgekit.registry import get_runtime

        return any(get_runtime(r).is_installed() for r in REFERENCE_RUNTIMES.values())

    def version(self) -> str | None:
        from edgekit._version import __version__

        return __version__

    def can_read(self, fmt: str) -> bool:
        return fmt in REFERENCE_RUNTIMES

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(REFERENCE_RUNTIMES)

    def accelerators(self) -> list[str]:
        """Every accelerator named by a device profile's target (each can be emulated here), and ``auto``."""
        from edgekit.devices import list_profiles

        return sorted({"cpu"} | {t.accelerator for p in list_profiles() for t in p.targets}) + ["auto"]

    def precisions(self, accelerator: str) -> tuple[str, ...]:
        return ("fp32", "fp16", "bf16", "int8")

    def _open(self, model: ModelFile, *, accelerator: str, threads: int, precision: str | None,
              options: dict[str, Any], profile_ops: bool) -> Session:
        from edgekit.emulation.core import prepare
        from edgekit.registry import get_runtime

        ref = get_runtime(REFERENCE_RUNTIMES.get(model.format, "onnxruntime"))
        ref.require()
        emu = prepare(model, options.get("device"), accelerator=None if accelerator == "auto" else accelerator,
                      unit=options.get("unit"), precision=precision, strict=bool(options.get("strict", False)),
                      calibration=options.get("calibration"), input_shapes=options.get("input_shapes"))
        inner = ref.open(open_model(emu.run_path), accelerator="cpu", threads=threads)
        used = {"device": emu.profile.name, "unit": emu.unit.name, "reference": f"{ref.name} {ref.version() or ''}".strip(),
                "threads": threads}
        return EmulatedSession(inner, emu, used)
