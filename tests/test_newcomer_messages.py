"""Messages and small facts a newcomer meets first (issue 14, item 11): catalog values taken as written,
"did you mean" for misspelled names, grammatical messages, and no native log chatter on a LiteRT load.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.catalog import parse_runtime_info
from edgekit.errors import CorruptModelError, UnknownRuntimeError
from edgekit.models.formats import open_model
from edgekit.registry import get_runtime

BASE = {"name": "x", "title": "X", "module": "x", "wheels": ["x"], "extra": "x", "formats": ["onnx"]}


def test_priority_zero_is_kept() -> None:
    """``priority = 0`` means "try first"; it was read as unset (an ``or`` on a falsy value) and became 50."""
    assert parse_runtime_info({**BASE, "priority": 0}, "x.toml").priority == 0
    assert parse_runtime_info(BASE, "x.toml").priority == 50


def test_misspelled_runtime_gets_a_suggestion() -> None:
    with pytest.raises(UnknownRuntimeError, match=r"did you mean 'onnxruntime'\?"):
        get_runtime("onnxrntime")
    with pytest.raises(UnknownRuntimeError) as info:
        get_runtime("zzzz")
    assert "did you mean" not in str(info.value)  # nothing close: no guess


@pytest.mark.parametrize(("suffix", "article"), [(".onnx", "an ONNX"), (".tflite", "a TFLite"),
                                                  (".xml", "an OpenVINO IR"), (".mnn", "an MNN")])
def test_empty_model_message_uses_the_right_article(suffix: str, article: str, tmp_path: Path) -> None:
    empty = tmp_path / f"m{suffix}"
    empty.write_bytes(b"")
    with pytest.raises(CorruptModelError, match=f"expected {article} model"):
        open_model(empty)


def test_litert_load_prints_no_xnnpack_info_line(tmp_path: Path) -> None:
    """TFLite's C++ logger wrote ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` to stderr on the
    first load of every process; ``edgekit run`` (in-process with --timeout 0) must print nothing on stderr."""
    pytest.importorskip("ai_edge_litert")
    from edgekit.models.sample import sample_model

    model = sample_model("tflite")
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 96, 96, 3), np.float32))
    exe = Path(sys.executable).with_name("edgekit")
    cmd = [str(exe) if exe.is_file() else sys.executable, *([] if exe.is_file() else ["-m", "edgekit"]),
           "run", str(model), "--input", str(x), "--runtime", "litert", "--timeout", "0", "--format", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "XNNPACK" not in proc.stderr and "INFO:" not in proc.stderr, proc.stderr


def test_python_load_of_litert_prints_nothing(tmp_path: Path) -> None:
    """The same through the Python API: a load and a run write nothing to stderr."""
    pytest.importorskip("ai_edge_litert")
    script = (
        "import edgekit, numpy as np\n"
        "from edgekit.models.sample import sample_model\n"
        "with edgekit.load(sample_model('tflite'), runtime='litert') as m:\n"
        "    m(np.zeros((1, 96, 96, 3), np.float32))\n"
        "import sys; sys.stderr.write('after\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "after\n", proc.stderr



def test_an_unknown_device_names_the_fix_in_the_callers_words(capfd: pytest.CaptureFixture[str]) -> None:
    """The same error speaks Python to the API (``device='auto'``) and CLI on the command line (``--device auto``)."""
    import edgekit
    from edgekit.cli import main
    from edgekit.errors import UnknownDeviceError
    from edgekit.models.sample import sample_model

    with pytest.raises(UnknownDeviceError, match=r"use device='auto'"):
        edgekit.load(sample_model("onnx"), device="no-such-board")
    with pytest.raises(SystemExit):
        main(["check", str(sample_model("onnx")), "--device", "no-such-board"])
    err = capfd.readouterr().err
    assert "--device auto" in err and "device='auto'" not in err, err
