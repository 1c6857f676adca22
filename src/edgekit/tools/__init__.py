"""The model tools deployment needs, each measured on real runtimes: inspect, check, quantize, convert.

* :mod:`~edgekit.tools.inspect` — format, opset, I/O, operator histogram, parameters, FLOPs.
* :mod:`~edgekit.tools.check` — per target or runtime: supported, partitioned or unsupported, and why.
* :mod:`~edgekit.tools.quantize` — int8/fp16 with size, latency and accuracy before and after.
* :mod:`~edgekit.tools.convert` — to OpenVINO IR, MNN or fp16 ONNX, verified against the original.

They sit above :func:`edgekit.load` (they load models to verify what they produce); the CLI
commands of the same names call them.

Example::

    from edgekit.tools.inspect import inspect_model
    inspect_model("det.onnx").flops
"""
