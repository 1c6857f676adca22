"""The Inception family: GoogLeNet (Inception v1), Inception v3, Inception v4, without auxiliary heads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgekit.testing.networks._builder import Builder

__all__ = ["googlenet", "inception_v3", "inception_v4"]


def _blocks(b: Builder) -> tuple[Callable[..., str], Callable[..., str], Callable[[str], str]]:
    """The blocks both Inceptions are made of: conv + ReLU, concat over channels, 3x3 stride-1 average pool."""
    def cv(x: str, cin: int, cout: int, k: int | tuple[int, int], s: int = 1, pad: Any = None) -> str:
        return b.conv(x, cin, cout, k, s, act="relu", pad=pad)

    def cat(*xs: str) -> str:
        return b.op("Concat", list(xs), axis=1)

    def avg(x: str) -> str:
        return b.pool(x, 3, 1, 1, kind="AveragePool")

    return cv, cat, avg


def inception_v3(b: Builder, size: int):
    cv, cat, avg = _blocks(b)

    x = cv(cv(cv("input", 3, 32, 3, 2, 0), 32, 32, 3, pad=0), 32, 64, 3)
    x = cv(cv(b.pool(x, 3, 2), 64, 80, 1), 80, 192, 3, pad=0)
    x, c = b.pool(x, 3, 2), 192
    for pf in (32, 64, 64):  # InceptionA
        x = cat(cv(x, c, 64, 1), cv(cv(x, c, 48, 1), 48, 64, 5),
                cv(cv(cv(x, c, 64, 1), 64, 96, 3), 96, 96, 3), cv(avg(x), c, pf, 1))
        c = 224 + pf
    x = cat(cv(x, c, 384, 3, 2, 0), cv(cv(cv(x, c, 64, 1), 64, 96, 3), 96, 96, 3, 2, 0), b.pool(x, 3, 2))  # B
    c = 768
    for c7 in (128, 160, 160, 192):  # InceptionC
        b7 = cv(cv(cv(x, c, c7, 1), c7, c7, (1, 7)), c7, 192, (7, 1))
        d = cv(cv(cv(cv(x, c, c7, 1), c7, c7, (7, 1)), c7, c7, (1, 7)), c7, c7, (7, 1))
        x = cat(cv(x, c, 192, 1), b7, cv(d, c7, 192, (1, 7)), cv(avg(x), c, 192, 1))
    d = cv(cv(cv(cv(x, c, 192, 1), 192, 192, (1, 7)), 192, 192, (7, 1)), 192, 192, 3, 2, 0)
    x, c = cat(cv(cv(x, c, 192, 1), 192, 320, 3, 2, 0), d, b.pool(x, 3, 2)), 1280  # InceptionD
    for _ in range(2):  # InceptionE
        t = cv(x, c, 384, 1)
        u = cv(cv(x, c, 448, 1), 448, 384, 3)
        x = cat(cv(x, c, 320, 1), cv(t, 384, 384, (1, 3)), cv(t, 384, 384, (3, 1)),
                cv(u, 384, 384, (1, 3)), cv(u, 384, 384, (3, 1)), cv(avg(x), c, 192, 1))
        c = 2048
    return b.model(b.head(x, c), size, [1, 1000], "inception_v3")


def googlenet(b: Builder, size: int):
    """torchvision's GoogLeNet (Inception v1) without the training-only auxiliary heads; like TF-slim's,
    its "5x5" branch uses a 3x3 convolution."""
    def cv(x: str, cin: int, cout: int, k: int) -> str:
        return b.conv(x, cin, cout, k, act="relu")

    x = b.pool(b.conv("input", 3, 64, 7, 2, act="relu"), 3, 2, ceil=True)
    x, c = b.pool(cv(cv(x, 64, 64, 1), 64, 192, 3), 3, 2, ceil=True), 192
    for i, (c1, r3, c3, r5, c5, pp) in enumerate([
            (64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), (192, 96, 208, 16, 48, 64),
            (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
            (256, 160, 320, 32, 128, 128), (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)]):
        x = b.op("Concat", [cv(x, c, c1, 1), cv(cv(x, c, r3, 1), r3, c3, 3), cv(cv(x, c, r5, 1), r5, c5, 3),
                            cv(b.pool(x, 3, 1, 1, ceil=True), c, pp, 1)], axis=1)
        c = c1 + c3 + c5 + pp
        if i in (1, 6):
            x = b.pool(x, 3 if i == 1 else 2, 2, ceil=True)
    return b.model(b.head(x, c), size, [1, 1000], "googlenet")


def inception_v4(b: Builder, size: int):
    """Inception v4 as TF-slim's ``inception_v4`` (Szegedy et al. 2016, figures 3-9), 1000 classes."""
    cv, cat, avg = _blocks(b)

    x = cv(cv(cv("input", 3, 32, 3, 2, 0), 32, 32, 3, pad=0), 32, 64, 3)
    x = cat(b.pool(x, 3, 2), cv(x, 64, 96, 3, 2, 0))  # mixed_3a: 160
    x = cat(cv(cv(x, 160, 64, 1), 64, 96, 3, pad=0),
            cv(cv(cv(cv(x, 160, 64, 1), 64, 64, (1, 7)), 64, 64, (7, 1)), 64, 96, 3, pad=0))  # mixed_4a: 192
    x, c = cat(cv(x, 192, 192, 3, 2, 0), b.pool(x, 3, 2)), 384  # mixed_5a
    for _ in range(4):  # Inception-A
        x = cat(cv(x, c, 96, 1), cv(cv(x, c, 64, 1), 64, 96, 3), cv(cv(cv(x, c, 64, 1), 64, 96, 3), 96, 96, 3),
                cv(avg(x), c, 96, 1))
    x = cat(cv(x, c, 384, 3, 2, 0), cv(cv(cv(x, c, 192, 1), 192, 224, 3), 224, 256, 3, 2, 0),
            b.pool(x, 3, 2))  # Reduction-A
    c = 1024
    for _ in range(7):  # Inception-B
        d = cv(cv(cv(cv(cv(x, c, 192, 1), 192, 192, (7, 1)), 192, 224, (1, 7)), 224, 224, (7, 1)), 224, 256, (1, 7))
        x = cat(cv(x, c, 384, 1), cv(cv(cv(x, c, 192, 1), 192, 224, (1, 7)), 224, 256, (7, 1)), d,
                cv(avg(x), c, 128, 1))
    x = cat(cv(cv(x, c, 192, 1), 192, 192, 3, 2, 0),
            cv(cv(cv(cv(x, c, 256, 1), 256, 256, (1, 7)), 256, 320, (7, 1)), 320, 320, 3, 2, 0),
            b.pool(x, 3, 2))  # Reduction-B
    c = 1536
    for _ in range(3):  # Inception-C
        t = cv(x, c, 384, 1)
        u = cv(cv(cv(x, c, 384, 1), 384, 448, (3, 1)), 448, 512, (1, 3))
        x = cat(cv(x, c, 256, 1), cv(t, 384, 256, (1, 3)), cv(t, 384, 256, (3, 1)),
                cv(u, 512, 256, (1, 3)), cv(u, 512, 256, (3, 1)), cv(avg(x), c, 256, 1))
    return b.model(b.head(x, c), size, [1, 1000], "inception_v4")
