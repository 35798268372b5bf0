"""Waits that give up when nothing moves, not when a wall clock runs out.

On a busy machine everything is slower but still moves, and a fixed deadline fails there although nothing
is wrong (issue 13: the suite failed twice while other processes loaded both cores). These waits fail only
after `quiet_s` seconds in which no sign of progress changed (a run's status, progress or note, a log that
grows, a process that spends CPU time), or after `cap_s` in all: the guard against something that moves for
ever without arriving.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import TypeVar

import psutil
import pytest

T = TypeVar("T")


def patiently(
    done: Callable[[], T],
    *,
    signs: Callable[[], Hashable],
    what: str,
    quiet_s: float = 60.0,
    cap_s: float = 900.0,
    poll_s: float = 0.2,
    explain: Callable[[], str] = str,
) -> T:
    """Poll `done()` until it returns something truthy; fail once `signs()` has not changed for `quiet_s`
    seconds or `cap_s` have passed, with `explain()` (logs, the page) in the message."""
    start = last_move = time.monotonic()
    last = signs()
    while True:
        value = done()
        if value:
            return value
        now = time.monotonic()
        sign = signs()
        if sign != last:
            last, last_move = sign, now
        if now - last_move > quiet_s or now - start > cap_s:
            why = f"nothing moved for {now - last_move:.0f} s" if now - last_move > quiet_s else "too long"
            pytest.fail(f"{what}: {why} ({now - start:.0f} s in all); last signs {last!r}\n{explain()}")
        time.sleep(poll_s)


def cpu_seconds(*pids: int) -> float:
    """CPU time spent so far by these processes and their children, to a tenth of a second (0 once gone)."""
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in (proc, *proc.children(recursive=True)):
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return round(total, 1)
