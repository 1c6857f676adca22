"""EfficientNet B0, EfficientNet-Lite0..4 and EfficientNet-EdgeTPU-S/M/L: one builder, three recipes.

The recipes follow tensorflow/tpu ``models/official/efficientnet`` (``efficientnet_builder.py``,
``lite/efficientnet_lite_builder.py``, ``edgetpu/efficientnet_edgetpu_builder.py``):

- B0: swish, squeeze-and-excitation (a quarter of the block's input channels);
- Lite: ReLU6, no squeeze-and-excitation, stem (32) and head (1280) not scaled, nor the repeats of
  the first and last stages;
- EdgeTPU: ReLU, no squeeze-and-excitation, the first three stages "fused" (one k x k convolution in
  place of the 1x1 expansion and the depthwise convolution), the first block without its residual.

Widths are rounded as TF's ``round_filters`` (multiples of 8, never 10 % down), repeats as
``ceil(depth * repeats)``. An expansion is ``declared input x ratio`` as in TF, where the declared
input of the first EdgeTPU stage (24) is not the stem's 32.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from edgekit.testing.networks._builder import Builder, divisible

__all__ = ["RECIPES", "efficientnet"]


class _Stage(NamedTuple):
    expand: int
    kernel: int
    stride: int
    declared_in: int
    out: int
    repeats: int
    fused: bool = False
    skip: bool = True


_B0 = [_Stage(1, 3, 1, 32, 16, 1), _Stage(6, 3, 2, 16, 24, 2), _Stage(6, 5, 2, 24, 40, 2), _Stage(6, 3, 2, 40, 80, 3),
       _Stage(6, 5, 1, 80, 112, 3), _Stage(6, 5, 2, 112, 192, 4), _Stage(6, 3, 1, 192, 320, 1)]
_EDGETPU = [_Stage(4, 3, 1, 24, 24, 1, True, False), _Stage(8, 3, 2, 24, 32, 2, True), _Stage(8, 3, 2, 32, 48, 4, True),
            _Stage(8, 5, 2, 48, 96, 5), _Stage(8, 5, 1, 96, 144, 4), _Stage(8, 5, 2, 144, 192, 2)]

#: recipe -> (stages, activation, squeeze-and-excitation, stem and head fixed)
RECIPES: dict[str, tuple[list[_Stage], str, bool, bool]] = {
    "b0": (_B0, "silu", True, False),
    "lite": (_B0, "relu6", False, True),
    "edgetpu": (_EDGETPU, "relu", False, False),
}


def efficientnet(recipe: str, width: float, depth: float, name: str):
    """A builder for ``recipe`` (see :data:`RECIPES`) scaled by ``width`` and ``depth``."""
    stages, act, se, fixed = RECIPES[recipe]

    def build(b: Builder, size: int):
        def filters(f: int) -> int:
            return divisible(f * width)

        c = 32 if fixed else filters(32)
        x = b.conv("input", 3, c, 3, 2, act=act)
        for j, st in enumerate(stages):
            repeats = st.repeats if fixed and j in (0, len(stages) - 1) else math.ceil(depth * st.repeats)
            declared, out = filters(st.declared_in), filters(st.out)
            for i in range(repeats):
                stride = st.stride if i == 0 else 1
                exp = declared * st.expand if st.expand != 1 else c
                if st.fused:
                    h = b.conv(x, c, exp, st.kernel, stride, act=act)
                else:
                    h = b.conv(x, c, exp, 1, act=act) if st.expand != 1 else x
                    h = b.conv(h, exp, exp, st.kernel, stride, groups=exp, act=act)
                if se:
                    h = b.se(h, exp, max(1, declared // 4), act, "sigmoid")
                h = b.conv(h, exp, out, 1, act=None)
                x = b.op("Add", [x, h]) if st.skip and stride == 1 and c == out else h
                c, declared = out, out
        head = 1280 if fixed else filters(1280)
        x = b.conv(x, c, head, 1, act=act)
        return b.model(b.head(x, head), size, [1, 1000], name)
    return build
