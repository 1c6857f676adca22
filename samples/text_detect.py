"""Text detection with PP-OCRv4 det (DB): rotated boxes around lines of text, drawn on the image.

Usage (after ``python samples/fetch_models.py``)::

    python samples/text_detect.py                              # a page drawn with OpenCV
    python samples/text_detect.py receipt.jpg --output text.jpg
    python samples/text_detect.py receipt.jpg --runtime openvino
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
from common import page, require_bundle

import edgekit

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description="Detect text with PP-OCRv4 det.")
    parser.add_argument("image", nargs="?", help="image file (default: a page drawn with OpenCV)")
    parser.add_argument("--bundle", default=str(HERE / "bundles" / "ppocr-det"), help="PP-OCR det bundle")
    parser.add_argument("--device", default=None, help="device profile name, .toml path or 'auto'")
    parser.add_argument("--runtime", default=None, help="runtime (onnxruntime, openvino, opencv, mnn)")
    parser.add_argument("--output", "-o", default=None, help="write the image with the text boxes drawn")
    args = parser.parse_args()

    frame = cv2.imread(args.image) if args.image else page()
    if frame is None:
        raise SystemExit(f"cannot read {args.image} as an image")
    require_bundle(args.bundle, "PP-OCR det")
    with edgekit.load_bundle(args.bundle, device=args.device, runtime=args.runtime) as pipe:
        print(f"running on {pipe.placement}")
        boxes = pipe.predict(frame)
    print(f"{len(boxes)} text box(es)")
    for b in boxes:
        corners = " ".join(f"({x:.0f},{y:.0f})" for x, y in b.points)
        print(f"  score {b.score:.2f}  corners {corners}")
    if args.output:
        from edgekit.pipeline.draw import draw

        cv2.imwrite(args.output, draw(frame, boxes))
        print(f"drawn to {args.output}")


if __name__ == "__main__":
    main()
