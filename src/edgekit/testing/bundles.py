"""Hand-made bundles for tests: a model file and an ``edgekit.toml`` written from plain tables.

``edgekit bundle create`` (:func:`edgekit.pipeline.create.create_bundle`) builds a bundle from a
preset; a test needs the exact pre- and post-processing it checks, so :func:`bundle_toml` writes
the tables it is given with edgekit's one TOML writer (:func:`edgekit.tomlfile.toml_text`): one
``key = value`` per line in the order given, a short table inside a table inline
(``anchors = { strides = [16] }``). :func:`write_bundle` puts that text beside the model. The
bundle's own parser (:func:`edgekit.pipeline.config.read_bundle_config`) reads it, so a test of
its checks can edit the text line by line.

Example::

    write_bundle(tmp_path / "cls", model,           # model: a .onnx with input image[1, 3, 32, 32]
                 inputs=[{"name": "image", "shape": [1, 3, 32, 32], "dtype": "float32"}],
                 preprocess={"color": "rgb", "resize": "letterbox", "mean": 0, "std": 255, "layout": "NCHW"},
                 postprocess={"kind": "classification", "top_k": 2, "labels": ["red", "green", "blue"]})
    edgekit.load_bundle(tmp_path / "cls")
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgekit.pipeline.config import BUNDLE_FORMAT, CONFIG_NAME
from edgekit.tomlfile import toml_text

__all__ = ["bundle_toml", "write_bundle"]


def bundle_toml(model: str, *, inputs: Sequence[Mapping[str, Any]], preprocess: Mapping[str, Any],
                postprocess: Mapping[str, Any]) -> str:
    """The ``edgekit.toml`` text of a bundle around the model file named ``model``.

    ``inputs``: one table per ``[[inputs]]`` entry; ``preprocess``, ``postprocess``: the tables.
    """
    return toml_text({"format": BUNDLE_FORMAT, "model": model, "inputs": list(inputs), "preprocess": preprocess,
                      "postprocess": postprocess})


def write_bundle(folder: Path, model: Path, *, inputs: Sequence[Mapping[str, Any]], preprocess: Mapping[str, Any],
                 postprocess: Mapping[str, Any]) -> Path:
    """Write a bundle of ``model`` (copied into ``folder`` unless it is there) and return ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if model.resolve().parent != folder.resolve():
        shutil.copy2(model, folder / model.name)
    text = bundle_toml(model.name, inputs=inputs, preprocess=preprocess, postprocess=postprocess)
    (folder / CONFIG_NAME).write_text(text, encoding="utf-8")
    return folder
