"""GPU paths (ONNX Runtime CUDA / TensorRT providers). CI has no GPU: these skip cleanly there.

They run where `onnxruntime-gpu` is installed and its CUDA provider starts.
"""

from __future__ import annotations

import pytest

import edgekit
from edgekit.registry import get_runtime
from edgekit.testing.cases import CASES
from edgekit.testing.conformance import check_case

pytestmark = pytest.mark.gpu


def _providers() -> list[str]:
    rt = get_runtime("onnxruntime")
    return rt.accelerators() if rt.is_installed() else []


needs_cuda = pytest.mark.skipif("cuda" not in _providers(),
                                reason="no CUDA execution provider here (needs an NVIDIA GPU and onnxruntime-gpu)")


@needs_cuda
@pytest.mark.parametrize("case", sorted(CASES))
def test_cuda_passes_conformance(case: str, model_dir) -> None:
    check_case("onnxruntime", case, "onnx", model_dir / "gpu", accelerator="cuda")


@needs_cuda
def test_nvidia_profile_places_on_the_gpu(build) -> None:
    with edgekit.load(build("conv_relu"), device="nvidia-rtx-4090") as m:
        assert m.placement.accelerator in ("tensorrt", "cuda"), m.placement.explain()


def test_without_cuda_the_gpu_profile_says_why(build) -> None:
    if "cuda" in _providers():
        pytest.skip("this host has CUDA: the fallback path is not taken")
    with edgekit.load(build("conv_relu"), device="nvidia-rtx-4090") as m:
        text = m.placement.explain()
    assert m.placement.accelerator == "cpu"
    assert "accelerator 'tensorrt' is not present" in text and "accelerator 'cuda' is not present" in text
