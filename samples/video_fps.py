"""Frames per second of a bundle in a video loop, on any device profile, with a per-stage breakdown.

Frames come from a video file (anything OpenCV's VideoCapture opens, looped if short) or are
synthetic: a drawn face beside a page of text, panned and zoomed a little each frame, so every
frame differs. Each frame is
pre-processed, run and post-processed, as an app would; the report gives end-to-end FPS and
the median milliseconds of each stage.

Usage (after ``python samples/fetch_models.py``)::

    python samples/video_fps.py samples/bundles/blazeface
    python samples/video_fps.py samples/bundles/ppocr-det --size 1280x720 --frames 100 --runtime openvino
    python samples/video_fps.py samples/bundles/blazeface --video clip.mp4 --device auto
    python samples/video_fps.py samples/bundles/blazeface --device raspberry-pi-5 --emulate   # predicted device latency
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator

import cv2
import numpy as np
from common import require_bundle, scene

import edgekit


def synthetic(width: int, height: int, count: int) -> Iterator[np.ndarray]:
    """``count`` frames: a drawn face beside a page of text (samples/common.py), panned and zoomed along a slow
    loop, so that either sample bundle has something to find in every frame."""
    base = scene(width, height)
    for i in range(count):
        a = 2 * np.pi * i / 120
        m = cv2.getRotationMatrix2D((width / 2, height / 2), 0, 1.0 + 0.05 * np.sin(a))
        m[:, 2] += (0.04 * width * np.cos(a), 0.04 * height * np.sin(a))
        yield cv2.warpAffine(base, m, (width, height), borderValue=(90, 90, 90))


def video(path: str, count: int) -> Iterator[np.ndarray]:
    """``count`` frames from a video file, rewinding when it ends."""
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise SystemExit(f"OpenCV cannot open {path} as a video")
    n = 0
    while n < count:
        ok, frame = cap.read()
        if not ok:
            if n == 0:
                raise SystemExit(f"{path}: no frames could be read")
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        n += 1
        yield frame
    cap.release()


def main() -> None:
    parser = argparse.ArgumentParser(description="Report FPS of a bundle in a video loop.")
    parser.add_argument("bundle", help="bundle folder or .zip")
    parser.add_argument("--video", help="video file (default: synthetic frames)")
    parser.add_argument("--frames", type=int, default=300, help="frames to time (default 300)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed frames first (default 10)")
    parser.add_argument("--size", default="640x480", help="synthetic frame size WxH (default 640x480)")
    parser.add_argument("--device", default=None, help="device profile name, .toml path or 'auto'")
    parser.add_argument("--runtime", default=None, help="runtime to use")
    parser.add_argument("--threads", type=int, default=None, help="inference threads")
    parser.add_argument("--emulate", action="store_true",
                        help="emulate --device's accelerator on this CPU and print its predicted latency")
    args = parser.parse_args()
    if args.frames < 1:
        parser.error("--frames must be at least 1")
    if args.emulate and not args.device:
        parser.error("--emulate needs --device (e.g. --device raspberry-pi-5)")

    require_bundle(args.bundle, "sample")
    width, height = (int(v) for v in args.size.lower().split("x"))
    total = args.warmup + args.frames
    frames = video(args.video, total) if args.video else synthetic(width, height, total)
    extra = {"emulate": True} if args.emulate else {}
    with edgekit.load_bundle(args.bundle, device=args.device, runtime=args.runtime, threads=args.threads,
                             **extra) as pipe:
        print(f"{pipe.config.name} on {pipe.placement}")
        stages: dict[str, list[float]] = {"pre": [], "infer": [], "post": [], "total": []}
        found = 0
        start = 0.0
        for i, frame in enumerate(frames):
            if i == args.warmup:
                start = time.perf_counter()
            t0 = time.perf_counter()
            tensor, tf = pipe.preprocess(frame)
            t1 = time.perf_counter()
            outputs = pipe.predictor.run(tensor)
            t2 = time.perf_counter()
            results = pipe.postprocess(outputs, tf)
            t3 = time.perf_counter()
            if i >= args.warmup:
                for key, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                    value_ms = value * 1e3
                    stages[key].append(value_ms)
                found += len(results)
        elapsed = time.perf_counter() - start
        estimate = pipe.predictor.estimate() if args.emulate else None
    n = len(stages["total"])
    what = (f"{found / n:.2f} results per frame" if found else
            "no results in any frame: the frames hold nothing this model finds, so post-processing was not timed "
            "on real results; try --video with frames it should find something in")
    print(f"{n} frames of {frame.shape[1]}x{frame.shape[0]} in {elapsed:.2f} s: {n / elapsed:.1f} FPS ({what})")
    for key, values in stages.items():
        print(f"  {key:5s} p50 {statistics.median(values):7.2f} ms   max {max(values):7.2f} ms")
    if estimate is not None:
        print(f"predicted on {args.device}: {estimate.total_ms:.2f} ms per inference "
              f"(~{1000 / estimate.total_ms:.0f} inferences/s, before pre/post-processing)")


if __name__ == "__main__":
    main()
