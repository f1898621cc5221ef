"""Worker processes that die with their parent.

A ``ProcessPoolExecutor`` worker blocks reading its call queue; when the parent is killed with
SIGKILL nothing tells it, so it stayed alive, idle, holding its model (1.3-1.46 GB for two workers
of the batch command). :func:`die_with_parent` makes the calling process exit once ``parent_pid``
is gone, two ways:

* Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` through ctypes — the kernel kills the worker the
  moment its parent exits (checked once more right after, in case the parent died first);
* everywhere (and as a back-up): a daemon thread that polls ``os.getppid()`` every
  ``interval`` seconds and calls ``os._exit`` once it is no longer ``parent_pid`` (the worker was
  re-parented to init or a subreaper).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

__all__ = ["die_with_parent", "PR_SET_PDEATHSIG"]

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_EXIT_CODE = 70  # what an orphaned worker exits with (EX_SOFTWARE)


def _set_pdeathsig() -> bool:
    """Ask the Linux kernel to SIGKILL this process when its parent exits; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int, interval: float) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(_EXIT_CODE)
        time.sleep(interval)


def die_with_parent(parent_pid: int, *, interval: float = 1.0) -> bool:
    """Make this process exit when ``parent_pid`` (the process that started it) is gone.

    Args:
        parent_pid: the parent's pid, taken by the parent itself before it started this process
            (``os.getppid()`` in the child could already name init).
        interval: seconds between two checks of the polling thread.

    Returns:
        Whether the kernel's parent-death signal is set (the polling thread runs either way).
    """
    kernel = _set_pdeathsig()
    if os.getppid() != parent_pid:  # the parent died before the signal was set
        os._exit(_EXIT_CODE)
    threading.Thread(target=_watch, args=(parent_pid, interval), name="gradlens-orphan-watch", daemon=True).start()
    return kernel
