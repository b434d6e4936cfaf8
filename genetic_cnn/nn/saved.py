"""Saving and loading trained networks: a state dict, a TorchScript export that carries its genome,
and on request an ONNX file.

``load_trained(path)`` is the one-line way back from either file written by ``genetic-cnn train``;
plain ``torch.jit.load(path)`` works for the export without this package, and the ONNX file runs in
onnxruntime (input ``images``, any batch size; output ``logits``; the genome in its metadata).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genetic_cnn.errors import UserError
from genetic_cnn.space.presets import NetworkPreset

if TYPE_CHECKING:
    from torch import nn

RESULTS = "results.json"
METADATA = "genetic_cnn.json"

__all__ = [
    "METADATA", "RESULTS", "export_onnx", "is_torchscript", "load_trained", "save_onnx", "save_trained", "trained_metadata",
]  # fmt: skip

ONNX_INPUT, ONNX_OUTPUT = "images", "logits"
ONNX_PACKAGES = ("onnx", "onnxscript")
"""What ``torch.onnx.export``'s default exporter needs besides torch (the ``onnx`` extra)."""


def save_trained(model: nn.Module, stem: Path, metadata: dict[str, Any], onnx: bool = False) -> dict[str, str]:
    """Write ``{stem}.pt`` (state dict) and ``{stem}.torchscript.pt`` (traced, eval mode), and with
    ``onnx`` ``{stem}.onnx`` (``save_onnx``); returns their paths.

    ``metadata`` (JSON-serialisable, with ``genome``, ``preset`` and ``network``: the preset as a
    dict) goes into the export as the ``genetic_cnn.json`` extra file; genome and preset name also
    become attributes of the exported module.
    """
    import torch

    model.eval()
    weights = stem.with_name(stem.name + ".pt")
    scripted = stem.with_name(stem.name + ".torchscript.pt")
    torch.save(model.state_dict(), weights)
    example = torch.zeros((2, *metadata["network"]["input_shape"]), device=next(model.parameters()).device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch marks TorchScript deprecated; it still works
        traced = torch.jit.trace(model, example)
        exported = torch.jit.script(_Exported(traced, metadata["genome"], metadata["preset"])).eval()
        torch.jit.save(exported, str(scripted), _extra_files={METADATA: json.dumps(metadata)})
    files = {"weights": str(weights), "torchscript": str(scripted)}
    if onnx:
        files["onnx"] = str(save_onnx(model, stem.with_name(stem.name + ".onnx"), metadata))
    return files


def check_onnx_exporter() -> None:
    """Refuse ``--onnx`` before any training when the exporter's packages are missing."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(
            f"--onnx needs the Python packages {', '.join(missing)}; install them with pip install 'genetic-cnn[onnx]'"
        )


def save_onnx(model: nn.Module, path: Path, metadata: dict[str, Any]) -> Path:
    """Export ``model`` (eval mode, on the CPU) to ONNX at ``path``: input ``images`` with any batch
    size, output ``logits``; ``metadata`` is stored as the model's ``genetic_cnn.json`` property.

    torch.onnx's default exporter (torch.export, then onnxscript) is used: the TorchScript-based one
    it replaces is deprecated.
    """
    import onnx
    import torch

    check_onnx_exporter()
    model = model.cpu().eval()
    example = torch.zeros((2, *metadata["network"]["input_shape"]))
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # it reports its steps on stdout
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, (example,), dynamo=True, input_names=[ONNX_INPUT], output_names=[ONNX_OUTPUT],
            dynamic_shapes=({0: batch},), verbose=False,
        )  # fmt: skip
    assert program is not None  # the dynamo exporter returns the program
    proto = program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA, json.dumps(metadata)
    onnx.save(proto, str(path))
    return path


def export_onnx(saved: str | Path, out: str | Path | None = None, force: bool = False) -> Path:
    """An ONNX file for a network saved by ``genetic-cnn train`` (its ``.pt`` or ``.torchscript.pt``):
    written beside it as ``{stem}.onnx`` unless ``out`` says where; returns its path."""
    import torch

    from genetic_cnn.nn.network import build_network

    check_onnx_exporter()
    saved = Path(saved)
    stem = saved.name.removesuffix(".pt").removesuffix(".torchscript")
    path = Path(out) if out is not None else saved.with_name(stem + ".onnx")
    if path.exists() and not force:
        raise UserError(f"{path} exists; pass --force to overwrite it or choose another --out")
    loaded: Any = load_trained(saved)
    model: nn.Module
    if is_torchscript(saved):
        metadata = trained_metadata(saved)
        model = build_network(metadata["genome"], _preset(metadata["network"]))
        model.load_state_dict(loaded.network.state_dict())  # the traced network keeps the parameter names
    else:
        record = json.loads((saved.parent / RESULTS).read_text(encoding="utf-8"))
        metadata = {key: record[key] for key in ("genome", "preset", "network") if key in record}
        model = loaded
    with torch.no_grad():
        return save_onnx(model, path, metadata)


def _preset(network: dict[str, Any]) -> NetworkPreset:
    fields: dict[str, Any] = {key: tuple(value) if isinstance(value, list) else value for key, value in network.items()}
    return NetworkPreset(**fields)


def _Exported(network: nn.Module, genome: str, preset: str) -> nn.Module:  # noqa: N802 - reads as a class
    """The traced network wrapped with its genome and preset name as string attributes (kept by TorchScript)."""
    from torch import nn

    class Exported(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network
            self.genome = genome
            self.preset = preset

        def forward(self, x):
            # Unannotated on purpose: TorchScript reads an unannotated argument as a Tensor.
            return self.network(x)

    return Exported()


def is_torchscript(path: str | Path) -> bool:
    """TorchScript archives hold compiled code; ``torch.save`` archives only pickled data."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_trained(path: str | Path, device: str = "cpu") -> nn.Module:
    """A model saved by ``train_final``, in eval mode: a ``.torchscript.pt`` export or a ``.pt`` state dict.

    A state dict is rebuilt into the network described by the ``results.json`` in its folder.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist; give a .pt or .torchscript.pt file written by genetic-cnn train")
    if is_torchscript(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location=device)
        return module.eval()
    from genetic_cnn.nn.network import build_network

    results = path.parent / RESULTS
    if not results.is_file():
        raise UserError(
            f"{path} is a state dict but {results} (which describes the network) is missing; load the .torchscript.pt file instead"
        )
    record = json.loads(results.read_text(encoding="utf-8"))
    model = build_network(record["genome"], _preset(record["network"]))
    model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
    return model.to(device).eval()


def trained_metadata(path: str | Path) -> dict[str, Any]:
    """The ``genetic_cnn.json`` metadata of a TorchScript export (genome, preset, network, normalization, ...)."""
    import torch

    extra = {METADATA: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra[METADATA])




# --------------------------------------------------------------------------------- CLI
