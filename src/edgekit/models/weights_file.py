"""The weights file beside a model file: OpenVINO IR (``.xml`` + ``.bin``) and ncnn (``.param`` + ``.bin``).

Both formats keep the graph in one file and the weights in a ``.bin`` of the same name beside
it. :mod:`edgekit.models.formats` and :mod:`edgekit.models.ncnn_param` (which ``formats``
imports) both check it, so the check lives here, below both.

Example::

    weights_beside(Path("det.xml"), "OpenVINO IR")        # Path('det.bin'), or ModelNotFoundError
"""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import ModelNotFoundError

__all__ = ["weights_beside"]


def weights_beside(path: Path, model: str) -> Path:
    """The ``.bin`` beside ``path``; ModelNotFoundError naming it when it is not there.

    ``model`` says what needs it in the message: ``"OpenVINO IR"``, ``"an ncnn model"``.
    """
    weights = path.with_suffix(".bin")
    if not weights.is_file():
        raise ModelNotFoundError(
            f"{path}: {model} needs its weights file {weights.name} beside the {path.suffix}; it is missing. "
            f"Copy the .bin next to the {path.suffix} (same name)."
        )
    return weights
