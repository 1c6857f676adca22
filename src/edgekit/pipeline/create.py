"""Make a bundle from a model file and a preset: ``edgekit bundle create face.tflite --preset blazeface``.

A preset (``src/edgekit/pipeline/presets/<name>.toml``) holds the pre- and post-processing;
the model's inputs are read from the model itself and written as ``[[inputs]]``. Presets may
say ``layout = "auto"`` / ``dtype = "auto"``, filled in from the model's input. The new bundle
is loaded once before it is kept, so a preset that does not fit the model fails here.

``plans=[...]`` embeds deployment plans (``edgekit tune ... -o plan.toml``) made for this model,
each as ``plans/<its device>.toml``; ``load_bundle(..., device=...)`` uses the one for the device.

Example::

    create_bundle("face.tflite", "blazeface", "bundles/blazeface")         # a folder
    create_bundle("face.tflite", "blazeface", "blazeface.zip")             # an archive
    create_bundle("face.tflite", "blazeface", "bf.zip", plans=["pi5.toml"])   # with a plan for its device
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from edgekit.errors import BundleError
from edgekit.models.formats import ModelFile
from edgekit.pipeline.config import BUNDLE_FORMAT, CONFIG_NAME, MAX_PLANS, PLAN_FILE, PLANS_DIR
from edgekit.plan import Plan
from edgekit.tensors import TensorSpec
from edgekit.tomlfile import toml_value

__all__ = ["create_bundle", "preset_names", "preset_text"]


def preset_names() -> list[str]:
    """The built-in presets."""
    folder = resources.files("edgekit.pipeline") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def preset_text(name: str) -> str:
    """The TOML text of preset ``name``."""
    if name not in preset_names():
        raise BundleError(f"unknown preset {name!r}; expected one of {preset_names()}. Or write edgekit.toml by hand "
                          "(docs/bundles.md).")
    return (resources.files("edgekit.pipeline") / "presets" / f"{name}.toml").read_text(encoding="utf-8")


def _inputs_block(inputs: list[TensorSpec]) -> str:
    lines = []
    for s in inputs:
        dims = ", ".join(str(d) if isinstance(d, int) and d >= 0 else "-1" for d in s.shape)
        lines += ["[[inputs]]", f"name = {toml_value(s.name)}", f"shape = [{dims}]", f'dtype = "{s.dtype.name}"']
        if s.quantization:
            lines += [f"scale = {s.quantization[0]!r}", f"zero_point = {s.quantization[1]}"]
        lines.append("")
    return "\n".join(lines)


def _layout(spec: TensorSpec) -> str:
    if len(spec.shape) == 4 and spec.shape[1] in (1, 3) and spec.shape[3] not in (1, 3):
        return "NCHW"
    return "NHWC"


def bundle_text(preset: str, model_name: str, inputs: list[TensorSpec], labels_file: str | None,
                size: tuple[int, int] | None = None) -> str:
    """The ``edgekit.toml`` text for ``preset`` around a model file with these inputs."""
    text = preset_text(preset)
    head, sep, tables = text.partition("\n[")
    tables = "[" + tables
    comments = [ln for ln in head.splitlines() if ln.startswith("#")]
    keys = [ln for ln in head.splitlines() if ln and not ln.startswith("#")]
    if inputs:
        tables = tables.replace('layout = "auto"', f'layout = "{_layout(inputs[0])}"')
        tables = tables.replace('dtype = "auto"', f'dtype = "{inputs[0].dtype.name}"')
    if size is not None:
        tables = re.sub(r"(?m)^size = .*\n", "", tables)
        tables = tables.replace("[preprocess]\n", f"[preprocess]\nsize = [{size[0]}, {size[1]}]\n", 1)
    if labels_file is not None:
        tables = re.sub(r"(?m)^labels = .*\n", "", tables)
        tables = tables.replace("[postprocess]\n", f"[postprocess]\nlabels = {toml_value(labels_file)}\n", 1)
    return "\n".join([*comments, f"format = {BUNDLE_FORMAT}", *keys, f"model = {toml_value(model_name)}", "",
                      _inputs_block(inputs), tables])


def _plans_for(mf: ModelFile, plans: Sequence[str | os.PathLike[str] | Plan]) -> dict[str, Plan]:
    """The plans to embed, by device; each must be for this model (by hash) and name a device."""
    out: dict[str, Plan] = {}
    for item in plans:
        plan = item if isinstance(item, Plan) else Plan.read(item)
        label = plan.source or "a plan"
        if plan.model_sha256 != mf.sha256():
            raise BundleError(f"--plan {label}: the plan is for {plan.model_name} (sha256 {plan.model_sha256[:12]}…), "
                              f"not {mf.path.name} (sha256 {mf.sha256()[:12]}…). Expected a plan made for this model: "
                              f"`edgekit tune {mf.path.name} --device NAME -o plan.toml`.")
        if plan.device is None or not PLAN_FILE.fullmatch(f"{plan.device}.toml"):
            raise BundleError(f"--plan {label}: the plan names no device profile (or one that cannot be a file name: "
                              f"{plan.device!r}); a bundle keeps one plan per device as {PLANS_DIR}/<device>.toml. "
                              f"Re-run `edgekit tune {mf.path.name} --device NAME` (or --device auto).")
        if plan.device in out:
            raise BundleError(f"--plan {label}: a second plan for device {plan.device!r} ({out[plan.device].source}); "
                              "expected one plan per device. Pass only one of them.")
        out[plan.device] = plan
    if len(out) > MAX_PLANS:
        raise BundleError(f"{len(out)} plans given; a bundle holds at most {MAX_PLANS}.")
    return out


def create_bundle(model: str | os.PathLike[str], preset: str, output: str | os.PathLike[str], *,
                  labels: str | os.PathLike[str] | None = None, size: tuple[int, int] | None = None,
                  runtime: str | None = None, force: bool = False,
                  plans: Sequence[str | os.PathLike[str] | Plan] = ()) -> Path:
    """Write a bundle for ``model`` with ``preset`` to ``output`` (a folder, or a ``.zip``); return its path.

    ``labels``: a text file, one label per line, copied in as ``labels.txt``. ``size``: the model
    input's (width, height), for presets that resize to a fixed size when the model's input is
    dynamic. ``runtime``: the one used to read the model's inputs and to check the bundle
    (default: the first that reads the format). ``plans``: deployment plans for this model, each
    written as ``plans/<device>.toml`` (BundleError when one is for another model or names no device).
    ONNX external-data files are copied beside the model, at the same relative paths.
    """
    from edgekit.models.formats import open_model
    from edgekit.pipeline.bundle import load_bundle
    from edgekit.predictor import load

    out = Path(output).expanduser()
    if out.exists() and not force and (out.is_file() or any(out.iterdir())):
        raise BundleError(f"{out} already exists and is not empty; expected a new folder or .zip. Choose another "
                          "--output, or pass --force to replace it.")
    if out.exists() and force and out.is_dir() and any(out.iterdir()) and not (out / CONFIG_NAME).is_file():
        raise BundleError(f"{out} is a folder that is not a bundle (no {CONFIG_NAME}); --force replaces only bundles. "
                          "Choose another --output.")
    mf = open_model(model)
    preset_text(preset)  # unknown preset: fail before any work
    embedded = _plans_for(mf, plans)
    with load(mf, runtime=runtime) as m:
        inputs = m.inputs
    with tempfile.TemporaryDirectory(prefix="edgekit-bundle-") as tmp:
        folder = Path(tmp) / (out.stem if out.suffix == ".zip" else out.name)
        folder.mkdir()
        shutil.copy2(mf.path, folder / mf.path.name)
        if mf.weights is not None:
            shutil.copy2(mf.weights, folder / mf.weights.name)
        for ext in mf.external:  # inside the model's folder (checked when the model was opened)
            dest = folder / os.path.relpath(ext, mf.path.parent)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ext, dest)
        for device, plan in embedded.items():
            plan.write(folder / PLANS_DIR / f"{device}.toml")
        if labels is not None:
            shutil.copy2(Path(labels).expanduser(), folder / "labels.txt")
        (folder / CONFIG_NAME).write_text(
            bundle_text(preset, mf.path.name, inputs, "labels.txt" if labels is not None else None, size),
            encoding="utf-8")
        try:
            load_bundle(folder, runtime=runtime).close()  # the preset must fit the model
        except BundleError as exc:
            raise BundleError(f"preset {preset!r} does not fit {mf.path.name}: "
                              + str(exc).replace(str(folder / CONFIG_NAME), "edgekit.toml")
                              + " Choose another preset, or write edgekit.toml by hand (docs/bundles.md).") from exc
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".zip":
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
                files = sorted(f for f in folder.rglob("*") if f.is_file())  # plans/ and external data included
                for f in files:  # fixed timestamps: same content, same archive (and cache key)
                    info = zipfile.ZipInfo(f.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                    info.external_attr = (stat.S_IFREG | 0o644) << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with open(f, "rb") as src, z.open(info, "w") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        else:
            shutil.copytree(folder, out)
    return out
