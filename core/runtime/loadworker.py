"""One simulated process of the load simulator.

Run as a *file* by an interpreter exec'd through a symlink named like the process it
imitates (``nginx -S -I loadworker.py ...``), so the kernel's ``/proc/PID/comm`` is
``nginx``. It imports nothing from ``core`` (``-S -I`` start: stdlib only, ~2.5 MB
private memory) and must stay cheap: the simulator may run hundreds of these on a shared
two-core machine.

Behaviour:
- CPU: in each 0.5 s period it spins for ``duty × period`` then sleeps; ``duty`` follows the
  pattern (steady / spiky / growing / random) around the target ``--cpu-pct``.
- Memory: holds a bytearray whose touched size follows the memory pattern around
  ``--memory-mb`` (pages are written so RSS really grows).
- Exits after ``--lifetime`` seconds (0 = until told), on SIGTERM, and as soon as its
  parent (the simulator) is gone: ``PR_SET_PDEATHSIG`` where possible plus a ``getppid``
  check every period, so a SIGKILLed simulator never leaves workers behind.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import time

PERIOD_S = 0.5
PAGE = 4096
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux / no libc: the getppid check still works
        pass


def duty_at(pattern: str, target: float, elapsed: float, lifetime: float, rng: random.Random) -> float:
    """Fraction of one core (0..1) to burn in the period starting at ``elapsed``.

    Each pattern averages roughly ``target`` over a run so the simulator's CPU cap holds.
    """
    if target <= 0:
        return 0.0
    if pattern == "spiky":  # one period in five at 5× the target
        d = target * 5 if int(elapsed / PERIOD_S) % 5 == 0 else 0.0
    elif pattern == "growing":  # ramps 0 → 2× target over the lifetime (or a minute)
        horizon = lifetime if lifetime > 0 else 60.0
        d = 2 * target * min(1.0, elapsed / horizon)
    elif pattern == "random":
        d = rng.uniform(0, 2 * target)
    else:
        d = target
    return max(0.0, min(1.0, d))


def memory_at(pattern: str, target_mb: float, elapsed: float, lifetime: float, rng: random.Random) -> float:
    if target_mb <= 0:
        return 0.0
    if pattern == "spiky":
        return target_mb * (2.0 if int(elapsed / (PERIOD_S * 4)) % 4 == 0 else 0.5)
    if pattern == "growing":
        horizon = lifetime if lifetime > 0 else 60.0
        return target_mb * (0.25 + 1.5 * min(1.0, elapsed / horizon))
    if pattern == "random":
        return rng.uniform(0.25, 1.75) * target_mb
    return target_mb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu-pattern", default="steady")
    ap.add_argument("--cpu-pct", type=float, default=0.0)
    ap.add_argument("--memory-pattern", default="steady")
    ap.add_argument("--memory-mb", type=float, default=0.0)
    ap.add_argument("--lifetime", type=float, default=0.0)
    ap.add_argument("--parent", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--anchor", action="store_true", help="process-group anchor: only sleeps")
    a, _ = ap.parse_known_args(argv)

    _die_with_parent()
    parent = a.parent or os.getppid()
    stop = False

    def _term(_sig: int, _frm: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, _term)
    rng = random.Random(a.seed)
    start = time.monotonic()
    held = bytearray()
    target = a.cpu_pct / 100.0
    while not stop:
        now = time.monotonic()
        elapsed = now - start
        if os.getppid() != parent or (a.lifetime > 0 and elapsed >= a.lifetime):
            break
        if a.anchor:
            time.sleep(PERIOD_S)
            continue
        want = int(memory_at(a.memory_pattern, a.memory_mb, elapsed, a.lifetime, rng) * 1024 * 1024)
        if abs(want - len(held)) > max(PAGE, len(held) // 10):
            held = bytearray()  # free first so the peak is one buffer, not two
            held = bytearray(want)  # calloc'd: untouched pages cost nothing yet
            held[::PAGE] = b"\x01" * len(range(0, want, PAGE))  # touch every page: real RSS
        busy = duty_at(a.cpu_pattern, target, elapsed, a.lifetime, rng) * PERIOD_S
        spin_until = time.monotonic() + busy
        x = 0
        while time.monotonic() < spin_until:
            x += 1
        rest = PERIOD_S - (time.monotonic() - now)
        if rest > 0:
            time.sleep(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
