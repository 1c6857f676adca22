"""Bundles (a model + ``edgekit.toml``) loaded as a :class:`Pipeline`: frame in, typed results out.

Thread safety: a Pipeline holds only read-only state (validated config, anchors) and a
:class:`~edgekit.Predictor`, which is itself thread-safe; each ``predict`` works on its own
arrays, so one Pipeline may serve several threads. Nothing is cached per call, so a
long-running loop does not grow memory.

Example::

    with edgekit.load_bundle("bundles/blazeface", device="auto") as pipe:
        for frame in frames:                        # BGR uint8, as OpenCV gives them
            for face in pipe.predict(frame):        # [Detection(box=(x0, y0, x1, y1), score, keypoints)]
                print(face.box, face.score)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import BundleError
from edgekit.pipeline.config import CONFIG_NAME, BundleConfig, read_bundle_config
from edgekit.pipeline.postprocess import Postprocessor
from edgekit.pipeline.preprocess import Transform, model_size, preprocess
from edgekit.pipeline.results import Result
from edgekit.plan import Plan
from edgekit.predictor import Predictor
from edgekit.tensors import TensorSpec

__all__ = ["Pipeline", "bundle_plan", "load_bundle", "resolve_bundle"]


def _fmt(spec: TensorSpec) -> str:
    return f"{spec.name}: {spec.dtype}[" + ", ".join("?" if not isinstance(d, int) or d < 0 else str(d)
                                                     for d in spec.shape) + "]"


def _check_inputs(cfg: BundleConfig, actual: list[TensorSpec], runtime: str) -> None:
    declared = {s.name: s for s in cfg.inputs}
    got = {s.name: s for s in actual}
    where = f"{cfg.file}"
    if set(declared) != set(got):
        raise BundleError(f"{where}: [[inputs]] declares {[_fmt(s) for s in cfg.inputs]}, but {cfg.model.name} on "
                          f"{runtime} has inputs {[_fmt(s) for s in actual]}. Fix the names in edgekit.toml, or "
                          "re-create the bundle for this model.")
    for name, d in declared.items():
        a = got[name]
        static_clash = any(isinstance(x, int) and isinstance(y, int) and x >= 0 and y >= 0 and x != y
                           for x, y in zip(d.shape, a.shape))
        if d.dtype != a.dtype or len(d.shape) != len(a.shape) or static_clash:
            raise BundleError(f"{where}: input {name!r} declared as {_fmt(d)}, but {cfg.model.name} on {runtime} "
                              f"expects {_fmt(a)}. The bundle does not describe this model: fix [[inputs]] and "
                              "[preprocess] (size, layout, dtype) or re-create the bundle.")


class Pipeline:
    """A bundle's model with its pre- and post-processing. Build it with :func:`load_bundle`."""

    def __init__(self, config: BundleConfig, predictor: Predictor) -> None:
        self.config = config
        self._predictor = predictor
        pre, where = config.pre, str(config.file)
        _check_inputs(config, predictor.inputs, predictor.placement.runtime)
        names = [s.name for s in config.inputs]
        if pre.input is None and len(names) != 1:
            raise BundleError(f"{where} [preprocess]: the model has inputs {names}; name the image input with key "
                              "'input'. Other inputs cannot be fed by a pipeline.")
        name = pre.input or names[0]
        if name not in names or len(names) != 1:
            raise BundleError(f"{where} [preprocess]: key 'input' names {name!r}; a pipeline feeds exactly one image "
                              f"input and the model has {names}.")
        declared = next(s for s in config.inputs if s.name == name)
        actual = next(s for s in predictor.inputs if s.name == name)
        self._spec = TensorSpec(name, declared.shape, actual.dtype, actual.quantization or declared.quantization)
        if np.dtype(pre.dtype) != actual.dtype:
            raise BundleError(f"{where} [preprocess]: key 'dtype' expected the model input's {actual.dtype}, got "
                              f"{pre.dtype!r}.")
        if len(declared.shape) != 4:
            raise BundleError(f"{where}: input {name!r} has rank {len(declared.shape)}; a pipeline feeds images as "
                              "rank-4 tensors (NHWC or NCHW).")
        channels = declared.shape[3] if pre.layout == "NHWC" else declared.shape[1]
        want = 1 if pre.color == "gray" else 3
        if isinstance(channels, int) and channels >= 0 and channels != want:
            raise BundleError(f"{where} [preprocess]: color {pre.color!r} with layout {pre.layout} gives {want} "
                              f"channel(s), but input {_fmt(declared)} has {channels} there. Fix 'layout' or "
                              "'color'.")
        self._target = model_size(pre, self._spec)
        if self._target is None and pre.resize not in ("multiple", "none"):
            raise BundleError(f"{where} [preprocess]: resize {pre.resize!r} needs a size, and input {name!r} is "
                              f"dynamic ({_fmt(declared)}); set size = [width, height] or use resize = 'multiple'.")
        self._post = Postprocessor(config.post, predictor.outputs, input_size=self._target,
                                   where=f"{where} [postprocess]")

    @property
    def predictor(self) -> Predictor:
        """The :class:`~edgekit.Predictor` running the model."""
        return self._predictor

    @property
    def placement(self) -> Any:
        """Where the model runs (runtime, accelerator, precision) and why."""
        return self._predictor.placement

    @property
    def kind(self) -> str:
        """The post-processing kind: ssd, classification, segmentation, db or none."""
        return self.config.post.kind

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, Transform]:
        """The model input for a BGR uint8 ``frame`` and the frame <-> model coordinate transform."""
        return preprocess(frame, self.config.pre, self._spec, self._target)

    def run(self, frame: np.ndarray) -> tuple[dict[str, np.ndarray], Transform]:
        """Pre-process and run the model: raw outputs by name, and the transform."""
        tensor, tf = self.preprocess(frame)
        return self._predictor.run({self._spec.name: tensor}), tf

    def postprocess(self, outputs: dict[str, np.ndarray], transform: Transform) -> list[Result] | dict[str, np.ndarray]:
        """Results from raw ``outputs`` of the model, mapped to the frame with ``transform``."""
        return self._post(outputs, transform)

    def predict(self, frame: np.ndarray) -> list[Result] | dict[str, np.ndarray]:
        """Results for one BGR uint8 frame, in the frame's pixel coordinates.

        ssd: ``[Detection]``; classification: ``[Classification]`` (top-k, best first);
        db: ``[TextBox]``; segmentation: ``[SegmentationMask]``; none: raw outputs by name.
        """
        outputs, tf = self.run(frame)
        return self._post(outputs, tf)

    __call__ = predict

    def close(self) -> None:
        """Release the runtime's resources."""
        self._predictor.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Pipeline {self.config.name} ({self.kind}) {self._predictor.placement}>"


def resolve_bundle(path: str | os.PathLike[str]) -> Path:
    """The folder holding ``edgekit.toml``, given a bundle folder, its ``edgekit.toml``, or a ``.zip`` (unpacked)."""
    p = Path(path).expanduser()
    if p.is_dir():
        return p
    if p.is_file() and p.name == CONFIG_NAME:
        return p.parent
    import zipfile

    if p.is_file() and zipfile.is_zipfile(p):
        from edgekit.pipeline.archive import unpack_bundle

        return unpack_bundle(p)
    if not p.exists():
        raise BundleError(f"{p}: no such bundle; expected a folder holding {CONFIG_NAME} and the model, or a .zip of "
                          "one. Make one with `edgekit bundle create MODEL --preset NAME --output DIR`.")
    raise BundleError(f"{p}: not a bundle (a folder with {CONFIG_NAME}, or a .zip of one). For a plain model file use "
                      "edgekit.load(), or wrap it: `edgekit bundle create MODEL --preset NAME --output DIR`.")


def bundle_plan(config: BundleConfig, device: Any) -> Plan | None:
    """The plan ``config``'s bundle carries for ``device`` (a profile name or path, ``"auto"``), or None."""
    if device is None or not config.plans:
        return None
    from edgekit.devices import detect, get_profile

    name = detect().profile.name if isinstance(device, str) and device == "auto" else get_profile(device).name
    return config.plans.get(name)


def load_bundle(path: str | os.PathLike[str], *, device: str | os.PathLike[str] | None = None,
                runtime: str | None = None, accelerator: str | None = None, threads: int | None = None,
                precision: str | None = None, strict: bool = False, plan: Plan | str | os.PathLike[str] | None = None,
                verify: bool = False, **options: Any) -> Pipeline:
    """Load a bundle (folder or ``.zip``) and return a :class:`Pipeline`.

    ``device``, ``runtime``, ``accelerator``, ``threads``, ``precision``, ``strict``, ``plan``,
    ``verify`` and ``options`` go to :func:`edgekit.load` for the bundle's model. With a ``device`` (``"auto"``
    included) and none of runtime, accelerator, precision, threads, plan or options given, the
    bundle's plan for that device (``plans/<device>.toml``) is used when it applies here; a plan
    that does not apply warns and falls back to the device's targets (``strict=True``: PlanError).
    Without one in the bundle, ``load`` does what it does (``"auto"``: the plan cache, then the targets).

    >>> pipe = load_bundle("bundles/blazeface", device="auto")        # doctest: +SKIP
    >>> pipe.predict(cv2.imread("photo.jpg"))                         # doctest: +SKIP
    [Detection(box=(171.2, 62.0, 266.9, 157.7), score=0.93, keypoints=(...), label='face')]
    >>> print(pipe.placement.explain())                               # doctest: +SKIP
    chosen: openvino 2026.4.1 on cpu, fp32, threads=4 [device generic-x86-64]
    plan: .../bundles/blazeface/plans/generic-x86-64.toml (tuned 2026-11-29 on Intel Xeon, p50 1.9 ms)
    """
    from edgekit.predictor import load

    config = read_bundle_config(resolve_bundle(path))
    if plan is None and runtime is None and accelerator is None and threads is None and precision is None \
            and not options:
        plan = bundle_plan(config, device)
    predictor = load(config.model, runtime=runtime, device=device, accelerator=accelerator, threads=threads,
                     precision=precision, strict=strict, plan=plan, verify=verify, **options)
    try:
        return Pipeline(config, predictor)
    except BaseException:
        predictor.close()
        raise
