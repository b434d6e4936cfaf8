"""Saving and loading trained networks: a state dict, and a TorchScript export that carries its genome.

``load_trained(path)`` is the one-line way back from either file written by ``genetic-cnn train``;
plain ``torch.jit.load(path)`` works for the export without this package.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genetic_cnn.errors import UserError
from genetic_cnn.presets import NetworkPreset

if TYPE_CHECKING:
    from torch import nn

RESULTS = "results.json"
METADATA = "genetic_cnn.json"

__all__ = ["METADATA", "RESULTS", "is_torchscript", "load_trained", "save_trained", "trained_metadata"]


def save_trained(model: nn.Module, stem: Path, metadata: dict[str, Any]) -> dict[str, str]:
    """Write ``{stem}.pt`` (state dict) and ``{stem}.torchscript.pt`` (traced, eval mode); returns their paths.

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
    return {"weights": str(weights), "torchscript": str(scripted)}


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
    from genetic_cnn.network import build_network

    results = path.parent / RESULTS
    if not results.is_file():
        raise UserError(
            f"{path} is a state dict but {results} (which describes the network) is missing; load the .torchscript.pt file instead"
        )
    record = json.loads(results.read_text(encoding="utf-8"))
    fields: dict[str, Any] = {
        key: tuple(value) if isinstance(value, list) else value for key, value in record["network"].items()
    }
    model = build_network(record["genome"], NetworkPreset(**fields))
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


