"""``edgekit convert``: ONNX to OpenVINO IR (fp32/fp16), ONNX/TFLite to MNN, ONNX to fp16 ONNX.

Every conversion is verified: the original and the converted model run on the same inputs and
the per-output difference is printed, with what the inputs were. The inputs are, first found:
``--input`` (images, ``.npy``/``.npz`` files or folders of them; images are scaled to [0, 1], or
go through the bundle's preprocessing when MODEL is a bundle); for a bundle, ``--samples``
synthetic image-like frames through its preprocessing; else ``--samples`` synthetic image-like
inputs (:func:`edgekit.tools.verify.image_like_feeds`: gradients, shapes, text-like strokes and
noise, scaled to [0, 1], [-1, 1] and ImageNet mean/std in turn; dynamic dimensions from
``--shape``, else 224 for an image's height and width and 1 elsewhere). The tolerance is
``load(verify=True)``'s for the precision (:func:`edgekit.tools.convert.tolerance`).

Exit codes (:mod:`edgekit.cli.codes`): OK (0) converted and verified; FAILED (1) converted but the
verification failed (an output drifts over its tolerance); USAGE (2) the model cannot be
converted, an input cannot be used, or the output would overwrite a file (``--force`` replaces an
existing file, never the model or its weights).

Example::

    $ edgekit convert det.onnx --to openvino --precision fp16 --output det.xml
    $ edgekit convert face.tflite --to mnn
    $ edgekit convert det.onnx --to ncnn                  # det.param + det.bin, verified on ncnn
    $ edgekit convert det.onnx --to onnx --precision fp16 --shape x=1x3x640x640 --input frame.npy
    $ edgekit convert bundles/ppocr-det --to onnx --precision fp16   # verified through the bundle's preprocessing
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from edgekit.cli.codes import FAILED
from edgekit.cli.output import output_options
from edgekit.cli.params import Shapes, shape_option

__all__ = ["convert"]

#: the frame size of the synthetic frames a bundle's preprocessing resizes (a VGA camera frame)
BUNDLE_FRAME = (640, 480)


@click.command()
@click.argument("model", type=click.Path())
@click.option("--to", "to", type=click.Choice(["openvino", "mnn", "ncnn", "onnx"]), required=True, help="Target format.")
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default=None,
              help="fp32 (default) or fp16 (openvino: fp16 weights; onnx: the only choice).")
@click.option("--output", "-o", "out", type=click.Path(dir_okay=False),
              help="Output file (.xml, .mnn, .param (+ .bin beside it) or .onnx; default beside MODEL).")
@click.option("--input", "--calibration", "-i", "inputs", multiple=True, type=click.Path(),
              help="Verify on these: an image, .npy or .npz file, or a folder of them (repeatable). "
                   "Default: synthetic image-like inputs.")
@shape_option("Shape for a dynamic input when verifying (repeatable); images are resized to it.")
@click.option("--samples", type=click.IntRange(min=1), default=8, show_default=True,
              help="Synthetic inputs to verify with when --input is not given.")
@click.option("--no-verify", is_flag=True, help="Convert only; do not compare outputs.")
@click.option("--force", is_flag=True, help="Replace an existing output file (never the model or its weights).")
@output_options(formats=("table", "json"), output=False)
def convert(model: str, to: str, precision: str | None, out: str | None, inputs: tuple[str, ...], shapes: Shapes,
            samples: int, no_verify: bool, force: bool, fmt: str) -> None:
    """Convert MODEL (a model file, or a bundle's model) to another format or precision and verify it."""
    from edgekit.tools.convert import convert_model

    prec = precision or ("fp16" if to == "onnx" else "fp32")
    source: Any = model
    feeds: Any = list(inputs) or None
    described: str | None = None
    if _is_bundle(Path(model)):
        source, out, feeds, described = _bundle_source(Path(model), to, out, inputs, samples, no_verify)
    report = convert_model(source, out, to=to, precision=prec, verify=not no_verify, inputs=feeds,
                           inputs_source=described, dims=dict(shapes) or None, samples=samples, force=force)
    if fmt == "json":
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    else:
        click.echo(report.summary())
    if report.failures():
        click.echo(f"error: {report.output} was written but does not match the original: " + "; ".join(report.failures())
                   + ". Do not deploy it; try another --precision or target.", err=True)
        sys.exit(FAILED)


def _is_bundle(path: Path) -> bool:
    from edgekit.pipeline.config import CONFIG_NAME

    return path.is_dir() or path.name == CONFIG_NAME or (path.suffix.lower() == ".zip" and path.is_file())


def _bundle_source(path: Path, to: str, out: str | None, inputs: tuple[str, ...], samples: int,
                   no_verify: bool) -> tuple[Path, str | None, list[dict[str, np.ndarray]] | None, str | None]:
    """A bundle's model, the default output (beside the model; beside a .zip for a zipped bundle) and its feeds."""
    from edgekit.pipeline.bundle import resolve_bundle
    from edgekit.pipeline.config import read_bundle_config
    from edgekit.tools.convert import TARGETS

    cfg = read_bundle_config(resolve_bundle(path))
    if out is None and path.suffix.lower() == ".zip":  # not inside edgekit's unpacked copy in the cache
        out = str(path.with_name(cfg.model.stem + (".fp16" if to == "onnx" else "") + TARGETS[to][2]))
    if no_verify:
        return cfg.model, out, None, None
    feeds, described = _bundle_feeds(cfg, inputs, samples)
    return cfg.model, out, feeds, described


def _bundle_feeds(cfg: Any, inputs: tuple[str, ...], samples: int) -> tuple[list[dict[str, np.ndarray]], str]:
    """Frames through the bundle's preprocessing: the ``--input`` images, else synthetic image-like frames."""
    from edgekit.errors import BundleError
    from edgekit.pipeline.preprocess import model_size, preprocess, read_image
    from edgekit.tools.calibration import IMAGE_SUFFIXES
    from edgekit.tools.verify import synthetic_images

    pre = cfg.pre
    names = [s.name for s in cfg.inputs]
    name = pre.input or names[0]
    if len(names) != 1 or name not in names:
        raise BundleError(f"{cfg.file}: a bundle feeds exactly one image input; the model has {names}. Convert the "
                          "model file itself, with --input NAME=... arrays.")
    spec = next(s for s in cfg.inputs if s.name == name)
    target = model_size(pre, spec)
    if target is None and pre.resize not in ("multiple", "none"):
        raise BundleError(f"{cfg.file} [preprocess]: resize {pre.resize!r} needs a size, and input {name!r} is dynamic; "
                          "set size = [width, height] or use resize = 'multiple'.")
    if inputs:
        files: list[Path] = []
        for item in inputs:
            p = Path(item).expanduser()
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) if p.is_dir() else [p]
        if not files:
            raise BundleError(f"--input {' '.join(inputs)}: no images (a bundle is verified on images, "
                              f"{', '.join(IMAGE_SUFFIXES)}).")
        frames = [read_image(f, "--input") for f in files]
        described = ", ".join(f.name for f in files[:4]) + (f" and {len(files) - 4} more" if len(files) > 4 else "")
        described += f" through {cfg.name}'s preprocessing"
    else:
        w, h = target if pre.resize == "none" and target else BUNDLE_FRAME
        frames = [np.ascontiguousarray(f[..., ::-1]) for f in synthetic_images(samples, h, w)]  # RGB -> BGR
        described = (f"{samples} synthetic image-like {w}x{h} frames (gradients, blobs, edges, text-like strokes "
                     f"and noise) through {cfg.name}'s preprocessing ({pre.color}, {pre.resize}, mean "
                     f"{list(pre.mean)}, std {list(pre.std)})")
    return [{name: preprocess(f, pre, spec, target)[0]} for f in frames], described
