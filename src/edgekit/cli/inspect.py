"""``edgekit inspect``: what is inside a model file.

Prints the format and its version, inputs and outputs, the operator histogram, parameters,
size, FLOPs and MACs (per operator type with ``--ops``), whether it is quantized and which
custom operators it uses. Exit codes: 0 done; 2 the model cannot be read (the message says why).

Example::

    $ edgekit inspect det.onnx
    $ edgekit inspect det.onnx --shape x=1x3x640x640 --ops        # FLOPs at that input size, per op type
    $ edgekit inspect face.tflite --format json
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from edgekit.cli.output import emit, output_options
from edgekit.cli.params import Shapes, shape_option

__all__ = ["inspect"]


def _count(n: int | None, unit: str = "") -> str | None:
    if n is None:
        return None
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n:,} ({n / div:.3g} {suffix}{unit})"
    return f"{n:,}"


def _tensor(s: Any) -> str:
    dims = "x".join(str(d) if isinstance(d, int) else "?" for d in s.shape) or "scalar"
    q = f", scale {s.quantization[0]:.4g}, zero point {s.quantization[1]}" if s.quantization else ""
    return f"{s.name}: {s.dtype} {dims}{q}"  # no square brackets: rich reads them as markup


def summary_rows(s: Any, *, ops: bool = False) -> list[dict[str, Any]]:
    """A :class:`~edgekit.tools.inspect.ModelSummary` as field/value rows."""
    rows: list[dict[str, Any]] = []

    def add(field: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            rows.append({"field": field, "value": value})

    add("file", s.path)
    add("format", f"{s.format} ({s.format_version})")
    add("producer", s.producer)
    add("size", _count(s.size_bytes, "B"))
    add("inputs", [_tensor(t) for t in s.inputs or []])
    add("outputs", [_tensor(t) for t in s.outputs or []])
    add("precision", f"{s.precision} ({'quantized' if s.quantized else 'not quantized'})")
    add("parameters", _count(s.parameters))
    add("operators", f"{s.node_count} nodes, {len(s.operators)} types")
    add("histogram", [f"{k} x{v}" for k, v in s.operators.items()])
    add("custom ops", s.custom_ops or "none")
    add("FLOPs", _count(s.flops))
    add("MACs", _count(s.macs))
    add("FLOPs not counted for", s.uncounted)
    if ops:
        total = s.flops or 1
        for t, f, m in s.flops_by_type:
            add(f"  {t}", f"{f:,} FLOPs ({100 * f / total:.1f}%), {m:,} MACs")
    for note in s.notes:
        add("note", note)
    return rows


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@shape_option("Fix a dynamic input's shape for the FLOP count (repeatable); by default the shape `edgekit "
              "profile` feeds (an image's height and width 224, other dynamic dims 1).")
@click.option("--ops", "show_ops", is_flag=True, help="Also list FLOPs and MACs per operator type.")
@click.option("--no-flops", is_flag=True, help="Skip the FLOP count (faster on very large models).")
@output_options
def inspect(model: str, shapes: Shapes, show_ops: bool, no_flops: bool, fmt: str, output: str | None) -> None:
    """Show what MODEL contains: format, I/O, operators, parameters, FLOPs, precision."""
    from edgekit.tools.inspect import inspect_model

    summary = inspect_model(model, flops=not no_flops, input_shapes=dict(shapes) or None)
    if fmt == "json":
        text = json.dumps(summary.to_dict(), indent=2, default=str) + "\n"
        if output:
            with open(output, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
        return
    emit(summary_rows(summary, ops=show_ops), fmt=fmt, output=output, title=f"edgekit inspect {model}")
