"""Process settings that make small-model CPU training faster (used by `vrft demo`).

- ``OMP_WAIT_POLICY=PASSIVE``: OpenMP threads that spin while waiting steal the cores a shared CPU
  needs; sleeping waiters cost little. Read when torch loads its OpenMP runtime, so it only applies
  if torch is not imported yet (and the user did not set it).
- glibc ``mallopt``: by default large tensors are mmap'ed and unmapped on free, so every training
  step page-faults its activations in again (measured on the demo's warm start: ~40k faults/s, half
  the CPU time in the kernel). Raising the mmap and trim thresholds keeps freed memory for reuse
  (12% faster steps there). Skipped where glibc is not the C library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_cpu_process() -> dict[str, bool]:
    """Apply the settings above; returns which took effect (for logs and tests)."""
    done = {"omp_passive": False, "mallopt": False}
    if "torch" not in sys.modules and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        done["omp_passive"] = True
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            ok = libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1
            ok = libc.mallopt(_M_TRIM_THRESHOLD, 1 << 31) == 1 and ok
            done["mallopt"] = ok
        except (OSError, AttributeError):  # musl or no libc: nothing to tune
            pass
    logger.debug("cpu process settings: %s", done)
    return done
