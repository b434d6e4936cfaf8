"""``run.reuse_memory``: freed activations are reused instead of faulted in afresh on every step."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest
from conftest import TINY

# A child process: the setting is process-wide and cannot be undone, so each case gets its own.
MEASURE = """
import resource, sys, torch, torch.nn.functional as F
from genetic_cnn.memory import reuse_freed_memory
from genetic_cnn.network import build_network
torch.set_num_threads(1)
if sys.argv[1] == "reuse":
    applied = reuse_freed_memory()
else:
    # glibc's initial mmap threshold, pinned: left alone, glibc raises it as blocks are freed, at
    # points that vary from run to run, which would make the comparison a matter of chance.
    import ctypes
    applied = ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024) == 1
torch.manual_seed(0)
model = build_network("1-01|0-01-100-0111", "mnist")
optimizer = torch.optim.Adam(model.parameters())
images, labels = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
def step():
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(images), labels).backward()
    optimizer.step()
step(); step()  # the first steps fault their memory in either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def page_faults(mode: str) -> tuple[str, int]:
    output = subprocess.run([sys.executable, "-c", MEASURE, mode], capture_output=True, text=True, check=True).stdout
    applied, faults = output.split()
    return applied, int(faults)


@pytest.mark.skipif(not GLIBC, reason="the setting exists only for glibc's malloc; elsewhere it is a no-op by design")
def test_reusing_freed_memory_removes_the_page_faults_of_training_steps() -> None:
    pinned, system = page_faults("system")
    applied, reused = page_faults("reuse")
    assert pinned == applied == "True"
    # Measured: about 300,000 minor faults in five steps with the initial threshold pinned, 0-2,000 with reuse.
    assert system > 5_000, f"only {system} page faults with the system's settings: the test no longer measures the effect"
    assert reused < system / 20, f"{reused} page faults with reuse against {system} without"


EVALUATOR = """
import sys
from genetic_cnn import memory
from genetic_cnn.config import load_config
from genetic_cnn.evaluate import Evaluator
config = load_config(None, sys.argv[1:])
Evaluator.from_config(config)
print(memory.reusing_freed_memory())
"""


@pytest.mark.skipif(not GLIBC, reason="the setting exists only for glibc's malloc; elsewhere it is a no-op by design")
@pytest.mark.parametrize("reuse", [False, True])
def test_the_evaluator_applies_the_setting_only_when_asked(reuse: bool) -> None:
    overrides = [*TINY, f"run.reuse_memory={str(reuse).lower()}"]
    output = subprocess.run([sys.executable, "-c", EVALUATOR, *overrides], capture_output=True, text=True, check=True)
    assert output.stdout.split()[-1] == str(reuse)
