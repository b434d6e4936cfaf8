"""Where training runs and the process-wide settings it needs: shared by every command that trains."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genetic_cnn.config import training_devices
from genetic_cnn.errors import UserError

if TYPE_CHECKING:
    import torch

    from genetic_cnn.config import RunConfig


def visible_gpus() -> int:
    """How many CUDA GPUs torch sees in this process (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(name: str) -> torch.device:
    """``auto`` is the GPU when there is one, else the CPU (``config.training_devices``); a GPU that is not
    there is a ``UserError``. A name that is no ``run.device`` (``train_final(device=...)``) goes to torch."""
    import torch

    try:
        devices = training_devices(name, visible_gpus)
    except ValueError:
        devices = (name,)
    if devices == ("cpu",):
        return torch.device("cpu")
    device = torch.device("cuda" if name == "auto" else name)  # auto: torch's current GPU, unnumbered as before
    if device.type == "cuda":
        if not devices or not torch.cuda.is_available():
            raise UserError(f"run.device = {name!r} but no CUDA GPU is available here; use cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"run.device = {name!r} but only {torch.cuda.device_count()} GPU(s) are visible")
    return device


def prepare_process(run: RunConfig, device: torch.device) -> None:
    """The process-wide speed settings of ``run`` for training on ``device`` (``run.reuse_memory``)."""
    from genetic_cnn.nn.memory import reuse_freed_memory

    if device.type == "cpu" and run.reuse_memory:
        reuse_freed_memory()


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()
