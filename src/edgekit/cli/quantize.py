"""``edgekit quantize``: int8-quantize an ONNX model and measure what it cost.

Static QDQ quantization needs calibration inputs (``--calibration``: a folder of images,
preprocessed to the model's input with ``--size``/``--mean``/``--std``/``--bgr``, or of
``.npy``/``.npz`` arrays); ``--mode dynamic`` needs none. Afterwards the size, ONNX Runtime
latency (median of interleaved runs) and the output drift on held-out inputs are printed,
with a warning when the result is slower or drifts far. A TFLite model is only reported as
quantized or not. Exit codes: 0 done; 2 the model or the calibration data cannot be used, or the
output would overwrite a file (``--force`` replaces an existing file, never the model or its data).

Example::

    $ edgekit quantize det.onnx --calibration images/ --size 640x640 \\
          --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --output det.int8.onnx
    $ edgekit quantize cls.onnx --calibration arrays/ --per-tensor
    $ edgekit quantize cls.onnx --mode dynamic --format json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from edgekit.cli.output import output_options

__all__ = ["quantize"]


def _floats(text: str | None, what: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected comma-separated numbers.", param_hint=what) from None


def _size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
        return h, w
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected HxW, e.g. 640x640.", param_hint="--size") from None


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--calibration", "-c", type=click.Path(), help="Folder (or file) of images, .npy or .npz inputs.")
@click.option("--output", "-o", "out", type=click.Path(dir_okay=False),
              help="Quantized model (default MODEL.int8.onnx).")
@click.option("--mode", type=click.Choice(["static", "dynamic"]), default=None,
              help="static (QDQ, calibrated; default with --calibration) or dynamic.")
@click.option("--per-tensor", is_flag=True, help="One scale per weight tensor instead of per channel.")
@click.option("--heldout", type=click.Path(),
              help="Inputs for measuring drift (default: the last fifth of the calibration files).")
@click.option("--size", help="HxW to resize images to (needed when the input's height/width are dynamic).")
@click.option("--layout", type=click.Choice(["NCHW", "NHWC"]), help="Image layout (default: from the input's shape).")
@click.option("--mean", help="Per-channel mean subtracted after scaling, e.g. 0.485,0.456,0.406.")
@click.option("--std", help="Per-channel std divided by, e.g. 0.229,0.224,0.225.")
@click.option("--scale", type=float, default=1 / 255, show_default=True, help="Pixel scale before mean/std.")
@click.option("--bgr", is_flag=True, help="Feed images in OpenCV's BGR order (default RGB).")
@click.option("--method", type=click.Choice(["minmax", "entropy", "percentile"]), default="minmax", show_default=True)
@click.option("--weight-type", type=click.Choice(["int8", "uint8"]), default="int8", show_default=True)
@click.option("--activation-type", type=click.Choice(["int8", "uint8"]), default="uint8", show_default=True)
@click.option("--exclude-op", multiple=True, help="Operator type to keep in float (repeatable).")
@click.option("--limit", type=int, help="Use at most this many calibration files.")
@click.option("--threads", type=int, default=1, show_default=True, help="ONNX Runtime threads for the latency check.")
@click.option("--no-measure", is_flag=True, help="Skip the size/latency/drift report.")
@click.option("--force", is_flag=True, help="Replace an existing output file (never the model or its data).")
@output_options(formats=("table", "json"), output=False)
def quantize(model: str, calibration: str | None, out: str | None, mode: str | None, per_tensor: bool,
             heldout: str | None, size: str | None, layout: str | None, mean: str | None, std: str | None,
             scale: float, bgr: bool, method: str, weight_type: str, activation_type: str,
             exclude_op: tuple[str, ...], limit: int | None, threads: int, no_measure: bool, force: bool,
             fmt: str) -> None:
    """Quantize MODEL (ONNX) to int8 and report size, latency and accuracy drift."""
    from edgekit.errors import InvalidOptionError, UnsupportedModelError
    from edgekit.models.formats import open_model
    from edgekit.tools.calibration import Preprocess
    from edgekit.tools.quantize import quantize_dynamic, quantize_static, tflite_status

    mf = open_model(model)
    if mf.format == "tflite":
        status = tflite_status(mf.path)
        if "already int8" in status:  # nothing to do is success
            click.echo(status)
            return
        raise UnsupportedModelError(status)  # exit 2: edgekit cannot do what was asked
    mode = mode or ("static" if calibration else None)
    if mode is None:
        raise InvalidOptionError("static quantization needs calibration inputs: pass --calibration FOLDER "
                                 "(images or .npy files), or choose --mode dynamic.")
    pre = Preprocess(size=_size(size), layout=layout, bgr=bgr, scale=scale,
                     mean=_floats(mean, "--mean") or (0.0,), std=_floats(std, "--std") or (1.0,))
    target = Path(out) if out else mf.path.with_name(f"{mf.path.stem}.int8.onnx")
    if mode == "static":
        if not calibration:
            raise InvalidOptionError("--mode static needs --calibration FOLDER (images or .npy files).")
        report = quantize_static(mf.path, target, calibration, per_channel=not per_tensor, preprocess=pre,
                                 heldout=heldout, weight_type=weight_type, activation_type=activation_type,
                                 method=method, exclude_ops=exclude_op, limit=limit, measure=not no_measure,
                                 threads=threads, force=force)
    else:
        report = quantize_dynamic(mf.path, target, inputs=calibration, preprocess=pre, per_channel=not per_tensor,
                                  weight_type=weight_type, measure=not no_measure, threads=threads, force=force)
    if fmt == "json":
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    else:
        click.echo(f"wrote {report.output}")
        click.echo(report.summary())
