"""Where a model tool may write: never over its input or a file the input uses; over another file only when forced.

``edgekit convert`` to OpenVINO IR writes ``det.xml`` *and* ``det.bin``; an ONNX model's own
external weights may be called ``det.bin`` too. :func:`claim_outputs` checks every file a
tool is about to write before it writes any of them.

Example::

    claim_outputs([out, out.with_suffix(".bin")], source=open_model("det.onnx"), force=False)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgekit.errors import InvalidOptionError
from edgekit.models.formats import ModelFile

__all__ = ["claim_outputs", "source_files"]


def source_files(model: ModelFile) -> list[Path]:
    """The model file and every file it references (IR weights, ONNX external data), resolved."""
    return [model.path, *([model.weights] if model.weights else []), *model.external]


def claim_outputs(outputs: Sequence[Path], *, source: ModelFile, force: bool) -> None:
    """Raise InvalidOptionError unless every path in ``outputs`` may be written.

    A path that is the source model or a file it references is refused even with ``force``
    (the tool would destroy what it reads); an existing file is refused unless ``force``.

    >>> claim_outputs([Path("/nonexistent/out.onnx")], source=ModelFile(Path("/m/in.onnx"), "onnx"), force=False)
    """
    inputs = {p.resolve() for p in source_files(source)}
    for out in outputs:
        target = out.resolve()
        if target in inputs:
            what = "the model itself" if target == source.path else "a file the model uses (its weights or external data)"
            raise InvalidOptionError(
                f"{out} is {what}: writing it would destroy the input of {source.path.name}. Expected an output "
                "path that is not one of the model's files; pass another --output / output=.")
        if target.exists() and not force:
            raise InvalidOptionError(
                f"{out} already exists; edgekit does not overwrite files unless asked. Pass --force (force=True "
                "in Python) to replace it, or choose another --output.")
