"""``edgekit convert``: ONNX to OpenVINO IR (fp32/fp16), ONNX/TFLite to MNN, ONNX to fp16 ONNX.

Every conversion is verified: the original and the converted model run on the same inputs
(random and reproducible, ``--samples`` of them, dynamic dimensions from ``--shape``, else 1)
and the per-output difference is printed. Exit codes: 0 converted and verified; 1 converted but
the verification failed (an output drifts over its limit); 2 the model cannot be converted, or the
output would overwrite a file (``--force`` replaces an existing file, never the model or its weights).

Example::

    $ edgekit convert det.onnx --to openvino --precision fp16 --output det.xml
    $ edgekit convert face.tflite --to mnn
    $ edgekit convert det.onnx --to onnx --precision fp16 --shape x=1x3x640x640
"""

from __future__ import annotations

import json
import sys

import click

from edgekit.cli.output import output_options
from edgekit.cli.params import Shapes, shape_option

__all__ = ["convert"]


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--to", "to", type=click.Choice(["openvino", "mnn", "onnx"]), required=True, help="Target format.")
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default=None,
              help="fp32 (default) or fp16 (openvino: fp16 weights; onnx: the only choice).")
@click.option("--output", "-o", "out", type=click.Path(dir_okay=False),
              help="Output file (.xml, .mnn or .onnx; default beside MODEL).")
@shape_option("Shape for a dynamic input when verifying (repeatable); unset dynamic dims are 1.")
@click.option("--samples", type=int, default=3, show_default=True, help="Random inputs to verify with.")
@click.option("--no-verify", is_flag=True, help="Convert only; do not compare outputs.")
@click.option("--force", is_flag=True, help="Replace an existing output file (never the model or its weights).")
@output_options(formats=("table", "json"), output=False)
def convert(model: str, to: str, precision: str | None, out: str | None, shapes: Shapes, samples: int,
            no_verify: bool, force: bool, fmt: str) -> None:
    """Convert MODEL to another format or precision and verify it against the original."""
    from edgekit.tools.convert import convert_model

    prec = precision or ("fp16" if to == "onnx" else "fp32")
    report = convert_model(model, out, to=to, precision=prec, verify=not no_verify,
                           dims=dict(shapes) or None, samples=samples, force=force)
    if fmt == "json":
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    else:
        click.echo(report.summary())
    if report.failures():
        click.echo(f"error: {report.output} was written but does not match the original: "
                   + "; ".join(report.failures()) + ". Do not deploy it; try another --precision or target.", err=True)
        sys.exit(1)
