"""``edgekit run``: run a bundle on an image (print results, draw them) or a plain model on arrays.

Exit codes: 0 ran; 2 usage or edgekit error, or the load or run took longer than ``--timeout`` (the
message says what to do); 130 interrupted (Ctrl-C stops even a long native run: the model runs in a
worker process unless ``--timeout 0``).

Example::

    $ edgekit run bundles/blazeface --input photo.jpg --output annotated.jpg
    $ edgekit run bundles/ppocr-det.zip --input page.png --format json
    $ edgekit run det.onnx --input x.npy                  # outputs: name, dtype, shape, min/max/mean
    $ edgekit run det.onnx --input x.npy --plan plan.toml # the configuration `edgekit tune` chose
    $ edgekit run bundles/blazeface --input photo.jpg --device auto   # the bundle's plan for this device, if any
    $ edgekit run two_inputs.onnx --input a=a.npy --input b=b.npy --output outputs.npz
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from edgekit.cli.output import emit, output_options
from edgekit.errors import InputError, InvalidOptionError

__all__ = ["run"]


def tensor_rows(outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One summary row per output tensor: name, dtype, shape, min, max, mean."""
    rows = []
    for name, v in outputs.items():
        a = np.asarray(v)
        num = a.size > 0 and a.dtype.kind in "biuf"
        rows.append({"output": name, "dtype": str(a.dtype), "shape": list(a.shape),
                     "min": float(a.min()) if num else None, "max": float(a.max()) if num else None,
                     "mean": float(a.astype(np.float64).mean()) if num else None})
    return rows


def result_rows(results: list[Any], fmt: str) -> list[dict[str, Any]]:
    """Rows for typed results; JSON keeps every field, other formats one compact line each."""
    rows = [r.as_dict() for r in results]
    if fmt == "json":
        return rows
    flat = []
    for i, d in enumerate(rows):
        details = d.get("keypoints") or d.get("points") or d.get("pixels") or d.get("index")
        flat.append({"#": i, "kind": d["kind"], "label": d.get("label"), "score": d.get("score"),
                     "box": d.get("box"), "details": str(details) if details not in (None, []) else None})
    return flat


def _read_arrays(items: tuple[str, ...]) -> Any:
    feeds: dict[str, np.ndarray] = {}
    positional: list[np.ndarray] = []
    for item in items:
        name, sep, file = item.partition("=")
        if not sep:
            name, file = "", item
        path = Path(file)
        if not path.is_file():
            raise InputError(f"--input {item!r}: no such file; expected FILE.npy, FILE.npz or NAME=FILE.npy.")
        if path.suffix.lower() not in (".npy", ".npz"):
            raise InputError(f"--input {item!r}: a plain model takes arrays (.npy or .npz), got a "
                             f"{path.suffix or 'suffix-less'} file. To feed an image, wrap the model in a bundle: "
                             "`edgekit bundle create MODEL --preset NAME --output DIR`.")
        try:
            data = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InputError(f"--input {item!r}: not a .npy/.npz array file ({exc}). A plain model takes arrays; "
                             "to feed an image, make a bundle (`edgekit bundle create`).") from exc
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                feeds.update({k: data[k] for k in data.files})
        elif name:
            feeds[name] = data
        else:
            positional.append(data)
    if feeds and positional:
        raise InputError("--input: mix of named (NAME=FILE or .npz) and unnamed arrays; name every input or none.")
    if positional:
        return positional[0] if len(positional) == 1 else positional
    return feeds


def _is_model(path: Path) -> bool:
    from edgekit.models.formats import FORMATS as MODEL_FORMATS

    return path.is_file() and any(path.suffix.lower() in s for s in MODEL_FORMATS.values())


@click.command()
@click.argument("target", type=click.Path(exists=True))
@click.option("--input", "-i", "inputs", multiple=True, required=True,
              help="Bundle: an image file (jpg/png…). Plain model: FILE.npy, FILE.npz or NAME=FILE.npy (repeatable).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Bundle: write the image with results drawn. Plain model: write outputs to a .npz.")
@click.option("--runtime", "-r", default=None, help="Runtime (`edgekit runtimes`); default: the first that reads it.")
@click.option("--device", "-d", default=None, help="Device profile: a name, a .toml path, or 'auto'.")
@click.option("--precision", "-p", default=None, help="fp32|fp16|bf16|int8, where the runtime offers a choice.")
@click.option("--threads", "-t", type=click.IntRange(min=1), default=None, help="Threads (default: all cores).")
@click.option("--plan", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Deployment plan (`edgekit tune -o plan.toml`): run its chosen configuration if it applies here.")
@click.option("--timeout", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds the load and the run may take; the model runs in a worker process that is killed "
                   "past it, or on Ctrl-C (0: no limit, in this process).")
@output_options(output=False)
def run(target: str, inputs: tuple[str, ...], output: str | None, runtime: str | None, device: str | None,
        precision: str | None, threads: int | None, plan: str | None, timeout: float, fmt: str) -> None:
    """Run TARGET (a bundle folder/.zip, or a plain model file) once and print what it gives.

    With --device (or 'auto'), a bundle's plan for that device, or a plan `edgekit tune` cached for
    the model, chooses the configuration; the title line shows where it ran.
    """
    opts: dict[str, Any] = {"runtime": runtime, "device": device, "precision": precision, "threads": threads,
                            "plan": plan, "timeout": timeout or None}
    path = Path(target)
    if _is_model(path):
        _run_model(path, inputs, output, fmt, opts)
    else:
        _run_bundle(path, inputs, output, fmt, opts)


def _run_model(path: Path, inputs: tuple[str, ...], output: str | None, fmt: str, opts: dict[str, Any]) -> None:
    from edgekit.predictor import load

    feeds = _read_arrays(inputs)
    with load(path, **opts) as m:
        start = time.perf_counter()
        outputs = m.run(feeds)
        ms = (time.perf_counter() - start) * 1e3
        placement = m.placement
    if output:
        if not output.endswith(".npz"):
            raise InvalidOptionError(f"--output {output!r}: a plain model's outputs are written as .npz; name the "
                                     "file NAME.npz.")
        np.savez(output, **outputs)  # type: ignore[arg-type]
    emit(tensor_rows(outputs), fmt=fmt, output=None, title=f"{path.name} on {placement}",
         footer=f"one run: {ms:.2f} ms" + (f"; outputs written to {output}" if output else ""))


def _run_bundle(path: Path, inputs: tuple[str, ...], output: str | None, fmt: str, opts: dict[str, Any]) -> None:
    import cv2

    from edgekit.pipeline.bundle import load_bundle
    from edgekit.pipeline.draw import draw

    if len(inputs) != 1:
        raise InputError(f"a bundle takes one image; got --input {list(inputs)}.")
    frame = cv2.imread(inputs[0], cv2.IMREAD_COLOR)
    if frame is None:
        raise InputError(f"--input {inputs[0]!r}: OpenCV cannot read it as an image; expected a jpg, png, bmp or "
                         "other format cv2.imread reads.")
    with load_bundle(path, **opts) as pipe:
        start = time.perf_counter()
        results = pipe.predict(frame)
        ms = (time.perf_counter() - start) * 1e3
        placement, name = pipe.placement, pipe.config.name
    if output:
        if not cv2.imwrite(output, draw(frame, results)):
            raise InvalidOptionError(f"--output {output!r}: OpenCV could not write it; use a .jpg or .png name in a "
                                     "writable folder.")
    if isinstance(results, dict):
        rows = tensor_rows(results)
    else:
        rows = result_rows(results, fmt)
    h, w = frame.shape[:2]
    footer = f"{len(rows)} result(s) on a {w}x{h} frame in {ms:.1f} ms" + (f"; drawn to {output}" if output else "")
    if not rows and fmt == "table":
        click.echo(f"{name} on {placement}: nothing found. {footer}")
        return
    emit(rows, fmt=fmt, output=None, title=f"{name} on {placement}", footer=footer)
