"""Train / validation / test split by patient, so no patient's films sit on both sides of a split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def split_by_patient(
    n: int,
    *,
    patients: Sequence[str | None] | None,
    given: Sequence[str | None] | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> dict[str, np.ndarray]:
    """Index arrays "train", "val", "test".

    Images whose source marks them "test" (ChestX-ray14's official list) form the test split, and the
    fractions then apply to the rest. Without patient ids every image is its own patient.
    """
    groups = [p if p else f"#image-{i}" for i, p in enumerate(patients or [None] * n)]
    flagged = [(g or "").lower() == "test" for g in (given or [None] * n)]
    # A patient with any film on the test list is a test patient: all of their films go to test.
    test_patients = {g for g, f in zip(groups, flagged, strict=True) if f}
    marked = np.array([g in test_patients for g in groups])
    unique = sorted({g for g in groups if g not in test_patients})
    order = np.random.default_rng(seed).permutation(len(unique))
    shuffled = [unique[i] for i in order]
    has_test = bool(marked.any())
    n_test = 0 if has_test else round(len(shuffled) * test_fraction)
    n_val = max(1, round(len(shuffled) * val_fraction)) if len(shuffled) > 2 else 0
    role = {g: "test" for g in shuffled[:n_test]}
    role |= {g: "val" for g in shuffled[n_test : n_test + n_val]}
    role |= {g: "train" for g in shuffled[n_test + n_val :]}
    names = np.array(["test" if m else role[g] for g, m in zip(groups, marked, strict=True)])
    return {k: np.flatnonzero(names == k) for k in ("train", "val", "test")}
