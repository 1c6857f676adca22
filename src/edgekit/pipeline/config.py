"""``edgekit.toml``: a bundle's model, expected inputs, pre- and post-processing — parsed and validated.

Every error is a :class:`~edgekit.errors.BundleError` naming the file, the key, what was
expected and what was found. The format is documented in ``docs/bundles.md``. Deployment plans
a bundle carries (``plans/<device>.toml``) are checked here too (:func:`read_bundle_plans`).

Example::

    cfg = read_bundle_config(Path("bundles/blazeface"))
    cfg.model, cfg.pre.resize, cfg.post.kind          # (PosixPath('.../face.tflite'), 'letterbox', 'ssd')
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import BundleError, ConfigError, PlanError
from edgekit.plan import Plan
from edgekit.tensors import TensorSpec
from edgekit.tomlfile import check_keys, expect, read_toml

__all__ = ["BUNDLE_FORMAT", "CONFIG_NAME", "MAX_PLANS", "PLANS_DIR", "BundleConfig", "Postprocess", "Preprocess",
           "read_bundle_config", "read_bundle_plans"]

CONFIG_NAME = "edgekit.toml"
BUNDLE_FORMAT = 1
#: the folder of a bundle that holds deployment plans, one per device profile: plans/<device>.toml
PLANS_DIR = "plans"
#: most plans a bundle may hold (each is also at most edgekit.plan.MAX_PLAN_BYTES)
MAX_PLANS = 64
PLAN_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}\.toml")

COLORS = ("rgb", "bgr", "gray")
RESIZES = ("stretch", "letterbox", "crop", "multiple", "none")
INTERPOLATIONS = ("nearest", "linear", "area", "cubic")
LAYOUTS = ("NHWC", "NCHW")
DTYPES = ("float32", "float16", "uint8", "int8")
POST_KINDS = ("ssd", "classification", "segmentation", "db", "none")
NUM = (int, float)


@dataclass(frozen=True)
class Preprocess:
    """How a BGR uint8 frame becomes the model's input tensor (see docs/bundles.md)."""

    input: str | None = None
    color: str = "rgb"
    resize: str = "stretch"
    size: tuple[int, int] | None = None  # (width, height)
    limit_side: int = 960
    limit_type: str = "max"
    multiple: int = 32
    pad_value: float = 0.0
    interpolation: str = "linear"
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    layout: str = "NHWC"
    dtype: str = "float32"
    quantize: bool = True


@dataclass(frozen=True)
class Postprocess:
    """How raw outputs become results; ``options`` holds the kind's validated keys."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ()

    def get(self, key: str) -> Any:
        """An option with its documented default."""
        return self.options.get(key, _POST_DEFAULTS[self.kind].get(key))


@dataclass(frozen=True)
class BundleConfig:
    """A validated ``edgekit.toml``: paths are resolved inside the bundle folder."""

    root: Path
    name: str
    description: str
    model: Path
    inputs: tuple[TensorSpec, ...]
    pre: Preprocess
    post: Postprocess
    plans: dict[str, Plan] = field(default_factory=dict)  # device profile name -> its plan (plans/<device>.toml)

    @property
    def file(self) -> Path:
        """The ``edgekit.toml`` path."""
        return self.root / CONFIG_NAME


_TOP_KEYS = {"format", "name", "description", "model", "inputs", "preprocess", "postprocess"}
_INPUT_KEYS = {"name", "shape", "dtype", "scale", "zero_point"}
_PRE_KEYS = {"input", "color", "resize", "size", "limit_side", "limit_type", "multiple", "pad_value",
             "interpolation", "mean", "std", "layout", "dtype", "quantize"}
_POST_DEFAULTS: dict[str, dict[str, Any]] = {
    "ssd": {"boxes": None, "scores": None, "score_threshold": 0.5, "sigmoid": True, "score_clip": 100.0,
            "box_format": "xywh", "box_scale": [1.0, 1.0, 1.0, 1.0], "box_exp": False, "num_keypoints": 0,
            "keypoint_offset": 4, "nms": "weighted", "iou_threshold": 0.3, "max_detections": 100,
            "anchors": None, "labels": None},
    "classification": {"output": None, "softmax": True, "top_k": 5, "score_threshold": 0.0, "labels": None},
    "segmentation": {"output": None, "layout": "NCHW", "sigmoid": False, "threshold": 0.5, "labels": None},
    "db": {"output": None, "threshold": 0.3, "box_threshold": 0.6, "unclip_ratio": 1.5, "max_candidates": 1000,
           "min_size": 3},
    "none": {},
}
_POST_TYPES: dict[str, Any] = {
    "boxes": str, "scores": str, "output": str, "score_threshold": NUM, "sigmoid": bool, "score_clip": NUM,
    "box_format": str, "box_scale": list, "box_exp": bool, "num_keypoints": int, "keypoint_offset": int,
    "nms": str, "iou_threshold": NUM, "max_detections": int, "anchors": dict, "softmax": bool, "top_k": int,
    "layout": str, "threshold": NUM, "box_threshold": NUM, "unclip_ratio": NUM, "max_candidates": int,
    "min_size": NUM, "labels": (str, list),
}
_ANCHOR_KEYS = {"strides", "min_scale", "max_scale", "aspect_ratios", "interpolated_scale_aspect_ratio",
                "offset", "fixed_size", "reduce_boxes_in_lowest_layer"}


def _choice(data: dict[str, Any], key: str, choices: tuple[str, ...], where: str, default: str) -> str:
    value = expect(data, key, str, where, required=False)
    if value is None:
        return default
    if value not in choices:
        raise BundleError(f"{where}: key {key!r} expected one of {list(choices)}, got {value!r}.")
    return value


def _numbers(data: dict[str, Any], key: str, where: str, default: tuple[float, ...]) -> tuple[float, ...]:
    if key not in data:
        return default
    value = data[key]
    values = value if isinstance(value, list) else [value]
    numbers = all(isinstance(v, NUM) and not isinstance(v, bool) for v in values)
    if not values or len(values) not in (1, 3) or not numbers:
        raise BundleError(f"{where}: key {key!r} expected a number or a list of 1 or 3 numbers, got "
                          f"{type(value).__name__} {value!r}.")
    return tuple(float(v) for v in values)


def _positive(value: Any, key: str, where: str) -> None:
    if value is not None and value <= 0:
        raise BundleError(f"{where}: key {key!r} expected a positive number, got {value!r}.")


def _parse_pre(data: dict[str, Any], where: str) -> Preprocess:
    check_keys(data, _PRE_KEYS, where)
    size = expect(data, "size", list, where, required=False)
    if size is not None and (len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                        for v in size)):
        raise BundleError(f"{where}: key 'size' expected [width, height] as two positive integers, got {size!r}.")
    std = _numbers(data, "std", where, (1.0,))
    if any(s == 0 for s in std):
        raise BundleError(f"{where}: key 'std' expected non-zero numbers, got {list(std)}; a zero divides by zero.")
    pre = Preprocess(
        input=expect(data, "input", str, where, required=False),
        color=_choice(data, "color", COLORS, where, "rgb"),
        resize=_choice(data, "resize", RESIZES, where, "stretch"),
        size=(size[0], size[1]) if size else None,
        limit_side=expect(data, "limit_side", int, where, required=False) or 960,
        limit_type=_choice(data, "limit_type", ("max", "min"), where, "max"),
        multiple=expect(data, "multiple", int, where, required=False) or 32,
        pad_value=float(expect(data, "pad_value", NUM, where, required=False) or 0.0),
        interpolation=_choice(data, "interpolation", INTERPOLATIONS, where, "linear"),
        mean=_numbers(data, "mean", where, (0.0,)), std=std,
        layout=_choice(data, "layout", LAYOUTS, where, "NHWC"),
        dtype=_choice(data, "dtype", DTYPES, where, "float32"),
        quantize=expect(data, "quantize", bool, where, required=False) is not False,
    )
    for key in ("limit_side", "multiple"):
        _positive(getattr(pre, key), key, where)
    channels = 1 if pre.color == "gray" else 3
    for key in ("mean", "std"):
        if len(getattr(pre, key)) not in (1, channels):
            raise BundleError(f"{where}: key {key!r} expected 1 or {channels} numbers for color {pre.color!r}, "
                              f"got {list(getattr(pre, key))}.")
    return pre


def _parse_inputs(data: Any, where: str) -> tuple[TensorSpec, ...]:
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) for d in data):
        raise BundleError(f"{where}: key 'inputs' expected a non-empty array of tables ([[inputs]] with name, shape, "
                          f"dtype), got {type(data).__name__} {data!r}.")
    specs = []
    for i, item in enumerate(data):
        w = f"{where} [[inputs]] #{i + 1}"
        check_keys(item, _INPUT_KEYS, w)
        shape = expect(item, "shape", list, w)
        if not all(isinstance(d, (int, str)) and not isinstance(d, bool) for d in shape):
            raise BundleError(f"{w}: key 'shape' expected integers (-1 or a name for a dynamic size), got {shape!r}.")
        dims = tuple(None if (isinstance(d, int) and d < 0) else d for d in shape)
        dtype = expect(item, "dtype", str, w)
        try:
            np_dtype = np.dtype(dtype)
        except TypeError as exc:
            raise BundleError(f"{w}: key 'dtype' expected a numpy dtype name such as 'float32', "
                              f"got {dtype!r}.") from exc
        scale, zp = expect(item, "scale", NUM, w, required=False), expect(item, "zero_point", int, w, required=False)
        specs.append(TensorSpec(expect(item, "name", str, w), dims, np_dtype,
                                (float(scale), int(zp or 0)) if scale is not None else None))
    return tuple(specs)


def _labels(value: Any, root: Path, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise BundleError(f"{where}: key 'labels' expected a list of strings or a file name, got {value!r}.")
        return tuple(value)
    path = inside(root, value, where, "labels")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{where}: key 'labels' names {value!r}, which cannot be read ({exc}); expected a UTF-8 "
                          "text file in the bundle, one label per line.") from exc
    return tuple(line.strip() for line in lines if line.strip())


def _parse_post(data: dict[str, Any], root: Path, where: str) -> Postprocess:
    kind = _choice(data, "kind", POST_KINDS, where, "none")
    allowed = set(_POST_DEFAULTS[kind]) | {"kind"}
    check_keys(data, allowed, f"{where} (kind {kind!r})")
    options: dict[str, Any] = {}
    for key in sorted(allowed - {"kind"}):
        value = expect(data, key, _POST_TYPES[key], where, required=False)
        if value is not None:
            options[key] = float(value) if _POST_TYPES[key] is NUM else value
    for key in ("iou_threshold", "unclip_ratio", "top_k", "max_detections", "max_candidates"):
        _positive(options.get(key), key, where)
    if kind == "ssd":
        _check_ssd(options, where)
    if kind == "segmentation" and options.get("layout", "NCHW") not in LAYOUTS:
        raise BundleError(f"{where}: key 'layout' expected one of {list(LAYOUTS)}, got {options['layout']!r}.")
    return Postprocess(kind=kind, options=options, labels=_labels(options.pop("labels", None), root, where))


def _check_ssd(options: dict[str, Any], where: str) -> None:
    for key in ("boxes", "scores", "anchors"):
        if key not in options:
            raise BundleError(f"{where}: kind 'ssd' needs key {key!r} (see docs/bundles.md).")
    if options.get("box_format", "xywh") not in ("xywh", "yxhw"):
        raise BundleError(f"{where}: key 'box_format' expected 'xywh' or 'yxhw', got {options['box_format']!r}.")
    if options.get("nms", "weighted") not in ("weighted", "plain", "none"):
        raise BundleError(f"{where}: key 'nms' expected 'weighted', 'plain' or 'none', got {options['nms']!r}.")
    scale = options.get("box_scale", [1.0] * 4)
    if len(scale) != 4 or not all(isinstance(v, NUM) and v > 0 for v in scale):
        raise BundleError(f"{where}: key 'box_scale' expected four positive numbers [x, y, w, h], got {scale!r}.")
    anchors, aw = options["anchors"], f"{where}.anchors"
    check_keys(anchors, _ANCHOR_KEYS, aw)
    strides = expect(anchors, "strides", list, aw)
    if not strides or not all(isinstance(s, int) and s > 0 for s in strides):
        raise BundleError(f"{aw}: key 'strides' expected a list of positive integers, got {strides!r}.")
    for key in ("min_scale", "max_scale", "interpolated_scale_aspect_ratio"):
        expect(anchors, key, NUM, aw, required=False)
    for key in ("aspect_ratios", "offset"):
        expect(anchors, key, list, aw, required=False)
    for key in ("fixed_size", "reduce_boxes_in_lowest_layer"):
        expect(anchors, key, bool, aw, required=False)


def inside(root: Path, name: str, where: str, key: str) -> Path:
    """``root / name``, refusing absolute paths and ``..`` escapes (checked on the name; links are the user's)."""
    candidate = root / name
    parts = Path(os.path.normpath(name.replace("\\", "/"))).parts
    if Path(name).is_absolute() or name.startswith(("/", "\\")) or (parts and parts[0] == ".."):
        raise BundleError(f"{where}: key {key!r} expected a file inside the bundle folder, got {name!r}, which "
                          "points outside it. Put the file in the bundle and name it relative to edgekit.toml.")
    return candidate


def read_bundle_config(root: Path) -> BundleConfig:
    """Read and validate ``root/edgekit.toml`` (the model file must exist; it is not opened here)."""
    path = root / CONFIG_NAME
    if not path.is_file():
        raise BundleError(f"{root}: no {CONFIG_NAME} in this folder; expected a bundle folder or .zip holding the "
                          "model and edgekit.toml. Make one with "
                          "`edgekit bundle create MODEL --preset NAME --output DIR`.")
    where = str(path)
    try:
        data = read_toml(path)
        check_keys(data, _TOP_KEYS, where)
        fmt = expect(data, "format", int, where)
        if fmt != BUNDLE_FORMAT:
            raise BundleError(f"{where}: key 'format' expected {BUNDLE_FORMAT}, got {fmt}; this edgekit reads bundle "
                              f"format {BUNDLE_FORMAT}. Upgrade edgekit or re-create the bundle.")
        model = inside(root, expect(data, "model", str, where), where, "model")
        if not model.is_file():
            raise BundleError(f"{where}: key 'model' names {data['model']!r}, which is not in {root}; expected the "
                              "model file beside edgekit.toml.")
        pre = _parse_pre(expect(data, "preprocess", dict, where), f"{where} [preprocess]")
        post = _parse_post(expect(data, "postprocess", dict, where, required=False) or {}, root,
                           f"{where} [postprocess]")
        return BundleConfig(root=root, name=expect(data, "name", str, where, required=False) or root.name,
                            description=expect(data, "description", str, where, required=False) or "",
                            model=model, inputs=_parse_inputs(expect(data, "inputs", list, where), where),
                            pre=pre, post=post, plans=read_bundle_plans(root))
    except BundleError:
        raise
    except ConfigError as exc:
        raise BundleError(str(exc)) from exc


def read_bundle_plans(root: Path) -> dict[str, Plan]:
    """The plans in ``root/plans/``, by device, every one checked; ``{}`` when the bundle has none.

    Plans are untrusted input like the rest of a bundle: the folder and each file must be plain
    (no symbolic links, no sub-folders), named ``<device>.toml`` with the device the plan names,
    at most :data:`MAX_PLANS` of them, each read through :meth:`edgekit.plan.Plan.read` (size
    limit, every key). Any violation is a BundleError naming the file.
    """
    folder = root / PLANS_DIR
    if not (folder.exists() or folder.is_symlink()):
        return {}
    if folder.is_symlink() or not folder.is_dir():
        raise BundleError(f"{folder}: expected a folder of deployment plans ({PLANS_DIR}/<device>.toml), got "
                          f"{'a symbolic link' if folder.is_symlink() else 'a file'}. Put the plans in a plain folder, "
                          "or re-create the bundle with `edgekit bundle create ... --plan plan.toml`.")
    entries = sorted(folder.iterdir())
    if len(entries) > MAX_PLANS:
        raise BundleError(f"{folder}: {len(entries)} entries, expected at most {MAX_PLANS} plans (one per device).")
    plans: dict[str, Plan] = {}
    for entry in entries:
        if entry.is_symlink() or not entry.is_file() or not PLAN_FILE.fullmatch(entry.name):
            kind = "a symbolic link" if entry.is_symlink() else "a folder" if entry.is_dir() else "a file"
            raise BundleError(f"{entry}: {kind} in {PLANS_DIR}/; expected only plain files named <device>.toml "
                              "(letters, digits and '_.+-'). Remove it, or re-create the bundle with "
                              "`edgekit bundle create ... --plan plan.toml`.")
        try:
            plan = Plan.read(entry)
        except PlanError as exc:
            raise BundleError(str(exc)) from exc
        device = entry.name[:-len(".toml")]
        if plan.device != device:
            raise BundleError(f"{entry}: key 'device' in [host] expected {device!r} (the file name), got "
                              f"{plan.device!r}. A bundle keeps the plan for device D as {PLANS_DIR}/D.toml: rename "
                              "the file, or embed the plan with `edgekit bundle create ... --plan plan.toml`.")
        plans[device] = plan
    return plans
