"""PeakMemory sees the memory of child processes, including short-lived peaks."""

import subprocess
import sys

from ptdeploy.tools.peakmem import PeakMemory

# A child that holds ~200 MiB of touched memory for a moment, then exits.
HOLD = "import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.0)"


def test_peak_includes_a_child_that_has_exited():
    with PeakMemory(interval_s=0.05) as mem:
        subprocess.run([sys.executable, "-c", HOLD], check=True)
    assert mem.peak_mib > 190


def test_no_children_no_memory():
    with PeakMemory(interval_s=0.05) as mem:
        pass
    assert mem.peak_bytes == 0
