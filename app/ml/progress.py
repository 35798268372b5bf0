"""One way for long computations to say where they are: a `Progress` report, passed to a `ProgressFn`.

Training a GAN, training a classifier, the synthetic-versus-real experiment, LCO and feature extraction
all report through it. Each counts its own units (images seen, optimiser steps, films settled, films
extracted); a report carries done and total in those units and a short line a person can read, so a run's
bar and a command-line bar take any of them alike. Where the caller needs more than that (the GAN's
losses, LCO's pass and batch), the computation reports a subclass with those fields, typed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """`done` of `total` units, and what a person reads beside the bar."""

    done: float
    total: float
    note: str = ""

    @property
    def fraction(self) -> float:
        """done / total in [0, 1] (0 while the total is unknown)."""
        return min(1.0, max(0.0, self.done / self.total)) if self.total > 0 else 0.0

    def within(self, lo: float, hi: float, note: str | None = None) -> Progress:
        """This report as a part of a larger whole that runs from `lo` to `hi` (fractions of the whole)."""
        return Progress(lo + (hi - lo) * self.fraction, 1.0, self.note if note is None else note)


ProgressFn = Callable[[Progress], None]
