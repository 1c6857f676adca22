"""Model files: formats and validation, readers, writers, graph facts (FLOPs, precision), the sample model.

Everything here works on the file alone — no runtime is loaded — so the runtime adapters can
use it. The tools users run on models (inspect, check, quantize, convert) are in
:mod:`edgekit.tools`, which loads runtimes.

Example::

    from edgekit.models.formats import open_model
    mf = open_model("det.onnx")          # validated: format, size, external data
    mf.format, mf.size                   # ('onnx', 1234567)
"""
