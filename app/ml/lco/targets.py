"""Target label vectors for LCO: given explicitly, drawn from the empirical joint distribution of a
labelled set (realistic co-occurrence), or balanced (each finding alone, equally often)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def explicit(combos: Sequence[Sequence[str]], findings: Sequence[str], n: int) -> np.ndarray:
    """(n, F) targets cycling through `combos` (each a set of findings; empty means no finding)."""
    index = {f: i for i, f in enumerate(findings)}
    unknown = {f for c in combos for f in c} - set(index)
    if unknown:
        raise ValueError(f"findings {sorted(unknown)} are not among the classifier's {list(findings)}")
    if not combos:
        raise ValueError("give at least one combination of findings")
    rows = np.zeros((len(combos), len(findings)), dtype=np.float32)
    for r, combo in enumerate(combos):
        rows[r, [index[f] for f in combo]] = 1
    return rows[np.arange(n) % len(combos)]


def empirical(labels: np.ndarray, n: int, *, seed: int) -> np.ndarray:
    """(n, F) rows drawn with replacement from a labelled set's (M, F) rows: its joint distribution."""
    if len(labels) == 0:
        raise ValueError("the labelled set is empty")
    rng = np.random.default_rng(seed)
    return np.asarray(labels, dtype=np.float32)[rng.integers(0, len(labels), size=n)]


def balanced(findings: Sequence[str], n: int) -> np.ndarray:
    """(n, F): each finding alone, in turn, so every finding gets n / F targets."""
    return np.eye(len(findings), dtype=np.float32)[np.arange(n) % len(findings)]
