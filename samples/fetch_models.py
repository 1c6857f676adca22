"""Fetch the real sample models and wrap them in bundles the other samples use.

The models come from the PyPI wheels named in DESIGN.md (``mediapipe==0.10.14`` for BlazeFace,
``rapidocr-onnxruntime==1.4.4`` for PP-OCR), pinned by version and sha256 and cached under
``$EDGEKIT_CACHE/models`` (default ``~/.cache/edgekit``): ``pip download`` fetches each wheel
once, nothing is installed. Then ``samples/bundles/blazeface`` and ``samples/bundles/ppocr-det``
are made with the presets of the same names.

Usage::

    python samples/fetch_models.py                    # models + bundles in samples/bundles/
    python samples/fetch_models.py --bundles /tmp/b   # bundles elsewhere
    python samples/fetch_models.py --no-bundles       # only fetch (prints the cached paths)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgekit.pipeline.create import create_bundle
from edgekit.testing.real_models import REAL_MODELS, fetch

#: model -> preset used for its sample bundle
BUNDLES = {"blazeface": "blazeface", "ppocr-det": "ppocr-det"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=Path(__file__).parent / "bundles",
                        help="where to write the sample bundles (default: samples/bundles)")
    parser.add_argument("--no-bundles", action="store_true", help="only fetch the models")
    args = parser.parse_args()
    for name, model in REAL_MODELS.items():
        path = fetch(name)
        print(f"{name:10s} {path}  ({model.requirement}, sha256 {model.sha256[:12]}…)")
        if not args.no_bundles and name in BUNDLES:
            out = create_bundle(path, BUNDLES[name], args.bundles / name, force=True)
            print(f"{'':10s} bundle: {out}")


if __name__ == "__main__":
    main()
