"""Face detection with BlazeFace: boxes, scores and six keypoints, drawn on the image.

Usage (after ``python samples/fetch_models.py``)::

    python samples/face_detect.py                              # a face drawn with OpenCV (samples/common.py)
    python samples/face_detect.py photo.jpg --output faces.jpg
    python samples/face_detect.py photo.jpg --device auto      # or raspberry-pi-5, --runtime openvino, ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
from common import portrait, require_bundle

import edgekit

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description="Detect faces with BlazeFace.")
    parser.add_argument("image", nargs="?", help="image file (default: a face drawn with OpenCV)")
    parser.add_argument("--bundle", default=str(HERE / "bundles" / "blazeface"), help="BlazeFace bundle")
    parser.add_argument("--device", default=None, help="device profile name, .toml path or 'auto'")
    parser.add_argument("--runtime", default=None, help="runtime (litert, openvino, opencv, mnn)")
    parser.add_argument("--output", "-o", default=None, help="write the image with the faces drawn")
    args = parser.parse_args()

    frame = cv2.imread(args.image) if args.image else portrait()
    if frame is None:
        raise SystemExit(f"cannot read {args.image} as an image")
    require_bundle(args.bundle, "BlazeFace")
    with edgekit.load_bundle(args.bundle, device=args.device, runtime=args.runtime) as pipe:
        print(f"running on {pipe.placement}")
        faces = pipe.predict(frame)
    print(f"{len(faces)} face(s) in the {frame.shape[1]}x{frame.shape[0]} image")
    for face in faces:
        x0, y0, x1, y1 = face.box
        eyes = ", ".join(f"({x:.0f}, {y:.0f})" for x, y in face.keypoints[:2])
        print(f"  score {face.score:.2f}  box ({x0:.0f}, {y0:.0f})-({x1:.0f}, {y1:.0f})  eyes {eyes}")
    if args.output:
        from edgekit.pipeline.draw import draw

        cv2.imwrite(args.output, draw(frame, faces))
        print(f"drawn to {args.output}")


if __name__ == "__main__":
    main()
