"""``edgekit run``: run a bundle on an image (print results, draw them) or a plain model on arrays.

A plain model runs on ``--input`` arrays; with ``--shape``, the inputs not given get synthetic
image-like data (:func:`edgekit.tools.verify.image_like_feeds`): a quick check that a model, a
converted one included, loads and runs. An input whose shape is dynamic (``?`` dims) needs
``--input`` or ``--shape``; without either the message names each input and its ``--shape``.

Exit codes (:mod:`edgekit.cli.codes`): OK (0) ran; USAGE (2) a usage or input error (a missing
file, a folder that is not a bundle, an input that does not fit), an edgekit error, or the load or
run took longer than ``--timeout`` (the message says what to do); INTERRUPTED (130) Ctrl-C (it
stops even a long native run: the model runs in a worker process unless ``--timeout 0``).

Example::

    $ edgekit run bundles/blazeface --input photo.jpg --output annotated.jpg
    $ edgekit run bundles/ppocr-det.zip --input page.png --format json
    $ edgekit run det.onnx --input x.npy                  # outputs: name, dtype, shape, min/max/mean
    $ edgekit run det.mnn --shape x=1x3x640x640           # a synthetic image-like input of that shape
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
from edgekit.cli.params import Shapes, shape_option
from edgekit.errors import BundleError, InputError, InvalidOptionError

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
@click.option("--input", "-i", "inputs", multiple=True,
              help="Bundle: an image file (jpg/png…). Plain model: FILE.npy, FILE.npz or NAME=FILE.npy (repeatable); "
                   "inputs not given get synthetic image-like data (see --shape).")
@shape_option("Plain model: the shape of an input not given by --input (repeatable); needed where it is dynamic.")
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
def run(target: str, inputs: tuple[str, ...], shapes: Shapes, output: str | None, runtime: str | None,
        device: str | None, precision: str | None, threads: int | None, plan: str | None, timeout: float,
        fmt: str) -> None:
    """Run TARGET (a bundle folder/.zip, or a plain model file) once and print what it gives.

    With --device (or 'auto'), a bundle's plan for that device, or a plan `edgekit tune` cached for
    the model, chooses the configuration; the title line shows where it ran.
    """
    opts: dict[str, Any] = {"runtime": runtime, "device": device, "precision": precision, "threads": threads,
                            "plan": plan, "timeout": timeout or None}
    path = Path(target)
    if _is_model(path):
        _run_model(path, inputs, dict(shapes), output, fmt, opts)
    else:
        if shapes:
            raise InvalidOptionError("--shape is for a plain model; a bundle's preprocessing sets its input's shape. "
                                     "Drop --shape, or run the model file itself.")
        _run_bundle(_bundle_root(path), inputs, output, fmt, opts)


def _bundle_root(path: Path) -> Path:
    """The bundle folder for TARGET, or a BundleError that says what TARGET is instead and what a bundle is."""
    from edgekit.models.formats import FORMATS as MODEL_FORMATS
    from edgekit.pipeline.bundle import resolve_bundle
    from edgekit.pipeline.config import CONFIG_NAME

    what = (f"A bundle is a folder (or a .zip of one) holding a model and {CONFIG_NAME}, which says how to turn an "
            "image into the model's input and its outputs into results; make one with `edgekit bundle create MODEL "
            "--preset NAME --output DIR` (`edgekit bundle presets` lists the presets).")
    suffixes = [s for ss in MODEL_FORMATS.values() for s in ss]
    if path.is_dir() and not (path / CONFIG_NAME).is_file():
        models = sorted(p.name for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        hint = (f" To run a model in it on arrays, give the model file: `edgekit run {path / models[0]} --input "
                "FILE.npy`." if models else "")
        raise BundleError(f"{path} is a folder but not a bundle: it has no {CONFIG_NAME}. {what}{hint}")
    if path.is_file() and path.suffix.lower() != ".zip" and path.name != CONFIG_NAME:
        import zipfile

        if not zipfile.is_zipfile(path):
            raise BundleError(f"{path} is neither a model file ({', '.join(suffixes)}) nor a bundle. {what}")
    return resolve_bundle(path)


def _model_feeds(m: Any, given: Any, shapes: dict[str, tuple[int, ...]]) -> tuple[dict[str, np.ndarray], str]:
    """The feeds for a plain model: ``--input`` arrays (``given``), synthetic image-like data of ``--shape`` for the rest.

    Every input comes from one of the two; the message for a missing one names its ``--shape``.
    """
    from edgekit.tensors import concrete_dims
    from edgekit.tools.verify import image_like_feeds

    specs = {s.name: s for s in m.inputs}
    listed = ", ".join(map(str, specs.values()))
    unknown = sorted(set(shapes) - set(specs))
    if unknown:
        raise InvalidOptionError(f"--shape for {unknown}: the model has no such input; its inputs are {listed}.")
    if not isinstance(given, dict):  # unnamed arrays: the model's inputs in order
        arrays = given if isinstance(given, list) else [given]
        if len(arrays) > len(specs):
            raise InputError(f"--input: {len(arrays)} unnamed arrays for a model with {len(specs)} input(s) ({listed}).")
        given = dict(zip(specs, arrays))
    strange = sorted(set(given) - set(specs))
    if strange:
        raise InputError(f"--input gives {strange}, which the model does not have; its inputs are {listed}.")
    for name, shape in shapes.items():
        spec = specs[name]
        if not spec.accepts(shape):
            raise InputError(f"--shape {name}={'x'.join(map(str, shape))} does not fit input {spec}; give one size "
                             "per dimension, matching the fixed ones (? is free).")
        if name in given and tuple(np.shape(given[name])) != shape:
            raise InputError(f"--shape {name}={'x'.join(map(str, shape))} but --input gives {name} the shape "
                             f"{'x'.join(map(str, np.shape(given[name])))}; drop one of them.")
    missing = [s for name, s in specs.items() if name not in given]
    unset = [s for s in missing if s.name not in shapes]
    if unset:
        example = " ".join(f"--shape {s.name}={'x'.join(map(str, concrete_dims(s, 640)))}" for s in unset)
        dynamic = " (? dims are dynamic: say the size to run at)" if any(s.is_dynamic for s in unset) else ""
        raise InvalidOptionError(
            f"no input for {', '.join(map(str, unset))} of {m.model.path.name}{dynamic}: give --input FILE.npy (or "
            f"NAME=FILE.npy, FILE.npz), or run it on synthetic image-like data with {example}.")
    if not missing:
        return given, ""
    (synthetic,), what = image_like_feeds(missing, 1, dims=shapes)
    return {**given, **synthetic}, what.replace("1 synthetic", "synthetic", 1)


def _run_model(path: Path, inputs: tuple[str, ...], shapes: dict[str, tuple[int, ...]], output: str | None, fmt: str,
               opts: dict[str, Any]) -> None:
    from edgekit.predictor import load

    if output and not output.endswith(".npz"):
        raise InvalidOptionError(f"--output {output!r}: a plain model's outputs are written as .npz; name the "
                                 "file NAME.npz.")
    given = _read_arrays(inputs) if inputs else {}  # a bad --input is reported before the model loads
    with load(path, **opts) as m:
        feeds, made = _model_feeds(m, given, shapes)
        start = time.perf_counter()
        outputs = m.run(feeds)
        ms = (time.perf_counter() - start) * 1e3
        placement = m.placement
    if output:
        _write_npz(output, outputs)
    emit(tensor_rows(outputs), fmt=fmt, output=None, title=f"{path.name} on {placement}",
         footer=f"one run: {ms:.2f} ms" + (f"; on {made}" if made else "")
         + (f"; outputs written to {output}" if output else ""))


def _write_npz(output: str, arrays: dict[str, np.ndarray]) -> None:
    """``arrays`` as ``output`` (.npz, one member per output name, whatever the names: ``np.savez(**d)`` breaks on
    an output named ``file``); an unwritable path is a usage error."""
    import zipfile

    try:
        with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as z:
            for name, arr in arrays.items():
                with z.open(f"{name}.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asarray(arr), allow_pickle=False)
    except OSError as exc:
        raise InvalidOptionError(f"--output {output!r}: cannot write it ({exc.strerror or exc}); name a .npz file in a "
                                 "writable folder.") from exc


def _write_image(output: str, image: np.ndarray) -> None:
    """Write ``image`` with OpenCV, its log silenced; a failure is a usage error."""
    import cv2

    log = cv2.utils.logging
    level = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        ok = cv2.imwrite(output, image)
    except cv2.error:
        ok = False
    finally:
        log.setLogLevel(level)
    if not ok:
        raise InvalidOptionError(f"--output {output!r}: OpenCV could not write it; use a .jpg or .png name in a "
                                 "writable folder.")


def _run_bundle(path: Path, inputs: tuple[str, ...], output: str | None, fmt: str, opts: dict[str, Any]) -> None:
    import cv2

    from edgekit.pipeline.bundle import load_bundle
    from edgekit.pipeline.config import read_bundle_config
    from edgekit.pipeline.draw import draw
    from edgekit.pipeline.preprocess import read_image

    cfg = read_bundle_config(path)  # a broken edgekit.toml is reported before the image
    if len(inputs) != 1:
        raise InputError(f"a bundle takes one image: give --input IMAGE (jpg, png, ...); got {len(inputs)}.")
    if Path(inputs[0]).suffix.lower() in (".npy", ".npz"):
        raise InputError(f"--input {inputs[0]}: a bundle takes an image (jpg, png, ...) and preprocesses it; to run "
                         f"its model on arrays, give the model file: `edgekit run {cfg.model} --input {inputs[0]}`.")
    frame = read_image(inputs[0], "--input")
    if output and not cv2.haveImageWriter(output):
        raise InvalidOptionError(f"--output {output!r}: OpenCV writes no image of that type; name a .jpg or .png file.")
    with load_bundle(path, **opts) as pipe:
        start = time.perf_counter()
        results = pipe.predict(frame)
        ms = (time.perf_counter() - start) * 1e3
        placement, name = pipe.placement, pipe.config.name
    if output:
        _write_image(output, draw(frame, results))
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
