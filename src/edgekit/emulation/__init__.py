"""Emulate a device profile's accelerator on this CPU: partitions, device numerics, predicted latency.

- :mod:`edgekit.emulation.spec`: accelerator specs (operator lists, partition rule, latency parameters),
  data in ``devices/emulation/*.toml``;
- :mod:`edgekit.emulation.graph`: a model's graph and its partition between accelerator and CPU;
- :mod:`edgekit.emulation.precision`: model rewrites for fp16/bf16 rounding, int8 quantization, fixed shapes;
- :mod:`edgekit.emulation.latency`: the roofline latency model;
- :mod:`edgekit.emulation.core`: :func:`prepare` ties them together for :mod:`edgekit.runtimes.emulated`.

Importing this package imports no runtime library.

Example::

    from edgekit.emulation import estimate_latency
    print(estimate_latency("mobilenet_v2_int8.onnx", "coral-edgetpu"))
"""

from __future__ import annotations

from edgekit.emulation.core import DEFAULT_DEVICE, Emulation, estimate_latency, prepare
from edgekit.emulation.latency import Estimate, OpEstimate, PartitionEstimate

__all__ = ["DEFAULT_DEVICE", "Emulation", "Estimate", "OpEstimate", "PartitionEstimate", "estimate_latency", "prepare"]
