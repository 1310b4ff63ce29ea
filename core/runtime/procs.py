"""Small facts about processes on this host, read from ``/proc``.

Every supervisor in the runtime (experiment collectors, the production collector, the
load simulator) verifies a stored PID before signalling it, because PIDs get reused.
``popen_tied`` starts a child that the kernel stops when this process dies, however it
dies (``PR_SET_PDEATHSIG``): used by one-off commands whose children must not outlive them.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def pid_alive(pid: int) -> bool:
    """True if a process with this PID exists (zombies included; see ``is_running``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has exited; only its exit status is left)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def reap(pid: int, timeout_s: float = 1.0) -> bool:
    """Collect the exit status of ``pid`` once it has exited, if it is a child of this process.

    A long-running scheduler stops its collectors by PID (they may have been adopted from an
    earlier process, with no ``Popen`` to wait on); without this each stopped child of its own
    would stay a zombie until the scheduler's process exits. True when reaped; False when it
    is not our child (nothing to do) or still runs after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except (ChildProcessError, OSError):
            return False
        if done:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def cmdline(pid: int) -> list[str]:
    """The process's argv, or [] when it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


# ---------------------------------------------------------------- children tied to this process

#: ``prctl`` option: the signal the kernel sends a process when its parent dies.
PR_SET_PDEATHSIG = 1

# Runs first in a tied child (``python -S -I -c``, stdlib only, ~20 ms): ask the kernel
# for a signal when the parent goes, then check the parent is still the one that started
# us — if it died between fork and prctl we were already re-parented and no signal will
# come — and exec the real command (the death signal survives execve).
_TIE_CODE = """\
import ctypes, os, sys
parent, sig = int(sys.argv[1]), int(sys.argv[2])
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, sig, 0, 0, 0)
except (OSError, AttributeError):
    pass
if os.getppid() != parent:
    sys.exit(128 + sig)
os.execvp(sys.argv[3], sys.argv[3:])
"""


def tied_argv(argv: list[str], sig: int = signal.SIGTERM, python: str | None = None) -> list[str]:
    """``argv`` behind a tiny exec wrapper that makes the kernel send ``sig`` to it when we exit.

    The wrapper's own command line still contains ``argv``, so cmdline-based ownership
    checks (``is_collector_of``) hold during the few milliseconds before the exec.
    """
    return [python or sys.executable, "-S", "-I", "-c", _TIE_CODE, str(os.getpid()), str(int(sig)), *argv]


_Reply = queue.SimpleQueue  # of (ok, value or exception)


class _Spawner:
    """One thread that lives as long as the process, for starting tied children.

    ``PR_SET_PDEATHSIG`` fires when the parent *thread* exits, not the process: a child
    started from a short-lived thread (a scheduler's worker thread, say) would be killed
    when that thread ends. The main thread lives until the process exits, so children
    started there are safe; any other thread hands its ``Popen`` to this daemon thread,
    which only ends with the process itself.
    """

    def __init__(self) -> None:
        self._q: queue.SimpleQueue[tuple[Callable[[], Any], _Reply]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _loop(self) -> None:
        while True:
            fn, reply = self._q.get()
            try:
                reply.put((True, fn()))
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                reply.put((False, exc))

    def run(self, fn: Callable[[], Any]) -> Any:
        if threading.current_thread() is threading.main_thread():
            return fn()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="phoenix-spawner", daemon=True)
                self._thread.start()
        reply: _Reply = queue.SimpleQueue()
        self._q.put((fn, reply))
        ok, value = reply.get()
        if not ok:
            raise value
        return value


_spawner = _Spawner()


def popen_tied(argv: list[str], *, sig: int = signal.SIGTERM, **kw: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **kw)`` whose process gets ``sig`` as soon as this process dies.

    Works for any executable (a real otelcol too), because the death signal is set by an
    exec wrapper rather than a ``preexec_fn`` (not safe in a process with threads). Use
    for children that must never outlive a one-off command (``experiment run --wait``);
    standing services (the app's scheduler, ``collector --production``) do not.
    """
    return _spawner.run(lambda: subprocess.Popen(tied_argv(list(argv), sig), **kw))  # type: ignore[no-any-return]


def session_members(sids: set[int]) -> list[int]:
    """Live (non-zombie) processes whose session id is one of ``sids`` (ours excluded)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        # state ppid pgrp session ...
        if len(fields) > 3 and fields[0] not in {"Z", "X"} and int(fields[3]) in sids:
            out.append(int(d.name))
    return out
