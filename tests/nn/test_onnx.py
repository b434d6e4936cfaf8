"""ONNX export of trained networks (`genetic-cnn train --onnx`, `genetic-cnn onnx SAVED`): onnxruntime
gives PyTorch's outputs, for any batch size, and the file carries the genome."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from conftest import run_cli

from genetic_cnn.config import load_config
from genetic_cnn.data.datasets import load_datasets
from genetic_cnn.nn.saved import METADATA, export_onnx, load_trained
from genetic_cnn.tools.final import train_final

GENOME = "1-01|0-01-100-0111"
TINY = ["data.dataset=synthetic", "space.preset=digits", "space.channels=[4, 8]", "run.device=cpu"]
TOLERANCE = 1e-4
"""Largest absolute difference allowed between onnxruntime's and PyTorch's logits (float32; measured
differences are around 1e-6)."""


def onnx_logits(path: str | Path, images: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"images": images})[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    out = tmp_path_factory.mktemp("onnx")
    return train_final(GENOME, load_config(None, TINY), seeds=1, out=out, epochs=1, onnx=True)


@pytest.mark.slow
def test_onnxruntime_gives_pytorchs_outputs(trained) -> None:  # noqa: ANN001
    files = trained.files[0]
    assert Path(files["onnx"]) == Path(files["torchscript"]).with_name("seed0.onnx")
    model = load_trained(files["weights"])
    test = load_datasets(load_config(None, TINY).data, seed=0).test
    for batch in (1, 7, len(test)):  # the batch dimension is dynamic
        images = test.images[:batch]
        with torch.no_grad():
            expected = model(images).numpy()
        got = onnx_logits(files["onnx"], images.numpy())
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < TOLERANCE
    accuracy = float((onnx_logits(files["onnx"], test.images.numpy()).argmax(1) == test.labels.numpy()).mean())
    assert accuracy == pytest.approx(trained.accuracies[0])
    metadata = json.loads({p.key: p.value for p in onnx.load(files["onnx"]).metadata_props}[METADATA])
    assert metadata["genome"] == GENOME and metadata["network"]["channels"] == [4, 8]


@pytest.mark.slow
def test_any_saved_network_exports(trained, tmp_path: Path) -> None:  # noqa: ANN001
    files = trained.files[0]
    images = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        expected = load_trained(files["weights"])(images).numpy()
    for saved in (files["torchscript"], files["weights"]):
        path = export_onnx(saved, tmp_path / (Path(saved).name + ".onnx"))
        assert np.abs(onnx_logits(path, images.numpy()) - expected).max() < TOLERANCE
    result = run_cli("onnx", files["weights"], timeout=300)  # seed0.onnx exists already
    assert result.returncode == 2 and "--force" in result.stderr and result.stderr.count("\n") == 1
