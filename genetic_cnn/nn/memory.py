"""Keep freed memory in the process for reuse: the CPU training lever of ``run.reuse_memory``.

glibc's malloc serves every allocation above its mmap threshold with a fresh ``mmap`` and gives it
back on ``free``, and trims the top of the heap once enough of it is free. It raises the threshold
(and the trim threshold with it) by itself as large blocks are freed, but a training step on CPU
still faults much of its activations' memory in afresh. Raising the mmap and trim thresholds and
the top pad keeps those blocks in the heap, where the next step finds them. The numbers computed
do not change.

Measured with ``python benchmarks/reuse_memory.py`` (the project's ``train_model``, channels_last,
batch 128, 30 steps after 3 warm-up steps, fresh processes alternating with glibc's untouched
defaults, 5 pairs; 2-core AMD EPYC, glibc 2.36, load average 0.1-1.4, other processes under 1.1%
of the CPU): it removes 96-98% of the minor page faults (about 180,000-240,000 down to about
6,000-7,000 over three genomes), but does not make training faster outside the noise. Over the
three genomes together, reuse/defaults images/s was 0.94x (pairs 0.86-1.01x, 95% interval
0.87-1.01x) on 2 threads and 1.03x (0.98-1.05x, interval 0.98-1.05x) on 1 thread; two more runs
(``--threads 1 --pairs 6``; ``--threads 2 --pairs 6``) gave 0.99x (interval 0.97-1.04x) and 1.04x
(interval 1.01-1.11x). Only the small all-zero network gains clearly (medians 1.07-1.31x); the
12-convolution networks, which take most of a search's time, gave medians of 0.84-1.05x. Hence
``run.reuse_memory`` is off by default (benchmarks/README.md has the tables).

The cost: the process keeps its peak heap instead of shrinking after it. Nothing here touches
CUDA memory, which PyTorch's caching allocator already reuses.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt parameters from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 1024 * 1024
"""glibc's largest mmap threshold on 64-bit systems: blocks up to this size come from the heap."""
TRIM_THRESHOLD = 1024 * 1024 * 1024
TOP_PAD = 64 * 1024 * 1024

_applied = False


def reusing_freed_memory() -> bool:
    """Whether ``reuse_freed_memory`` took effect in this process."""
    return _applied


def reuse_freed_memory() -> bool:
    """Set glibc's malloc to keep freed blocks for reuse; True when it took effect.

    Idempotent, process-wide, and a no-op (False) off Linux/glibc (macOS, Windows, musl), where the
    system allocator is left as it is.
    """
    global _applied
    if _applied:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; all three must hold, or freed blocks still go back to the system.
    done = all(
        mallopt(parameter, value) == 1
        for parameter, value in ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD))
    )  # fmt: skip
    _applied = done
    return done
