"""Drawing a study's cases and each reader's order; pure functions of a seed.

Orders are block-randomised: the real and synthetic cases are dealt into small blocks that each hold
the study's ratio, shuffled within the block. A reader who stops early has still seen the designed
mix, and runs of one kind stay short, so a reader cannot learn the base rate from streaks. Block sizes
vary at random (4, 6 or 8 cases at 1:1), as in randomised trials: with a fixed block of 4, the fourth
case of each block would be known from the other three.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import numpy as np

from app.domain.errors import Invalid

# Domains of the seed sequence, so the case draw and reader orders never share random streams.
_CASES, _ORDER, _RETEST = 0, 1, 2


@dataclass(frozen=True)
class Candidate:
    """An image that can become a case."""

    image_id: int
    truth: str  # "real" | "synthetic"
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Draw:
    """The images chosen for a study: (image_id, truth) pairs for the main and the practice block."""

    main: list[Candidate]
    practice: list[Candidate]


def split_counts(n: int, ratio_real: int, ratio_synthetic: int) -> tuple[int, int]:
    """How many of `n` cases are real and synthetic under the ratio (rounded to the nearest)."""
    n_real = round(n * ratio_real / (ratio_real + ratio_synthetic))
    return n_real, n - n_real


def _take(
    rng: np.random.Generator, pool: list[Candidate], k: int, what: str, stratify: str | None
) -> list[Candidate]:
    """k candidates from pool; with a stratifying finding, half with it and half without."""
    if k > len(pool):
        raise Invalid(f"The study needs {k} {what} images but the chosen sets hold only {len(pool)}.")
    if stratify is None:
        idx = rng.permutation(len(pool))[:k]
        return [pool[i] for i in sorted(idx)]
    pos = [c for c in pool if stratify in c.labels]
    neg = [c for c in pool if stratify not in c.labels]
    k_pos = k // 2
    if k_pos > len(pos) or k - k_pos > len(neg):
        raise Invalid(
            f"Stratifying by {stratify} needs {k_pos} {what} images with it and {k - k_pos} without; "
            f"the sets hold {len(pos)} and {len(neg)}."
        )
    chosen = [pos[i] for i in rng.permutation(len(pos))[:k_pos]] + [
        neg[i] for i in rng.permutation(len(neg))[: k - k_pos]
    ]
    return sorted(chosen, key=lambda c: c.image_id)


def draw_cases(
    real: list[Candidate],
    synthetic: list[Candidate],
    *,
    n_cases: int,
    ratio_real: int,
    ratio_synthetic: int,
    practice: int,
    stratify: str | None,
    seed: int,
) -> Draw:
    """Choose the main cases and a disjoint practice block, reproducibly from `seed`."""
    if n_cases < 1:
        raise Invalid("A study needs at least one case.")
    rng = np.random.default_rng(np.random.SeedSequence([seed, _CASES]))
    n_real, n_syn = split_counts(n_cases, ratio_real, ratio_synthetic)
    p_real, p_syn = split_counts(practice, 1, 1) if practice else (0, 0)
    if n_real + p_real > len(real):
        raise Invalid(
            f"The study needs {n_real + p_real} real images (with practice) but the real sets hold "
            f"{len(real)}."
        )
    if n_syn + p_syn > len(synthetic):
        raise Invalid(
            f"The study needs {n_syn + p_syn} synthetic images (with practice) but the synthetic sets "
            f"hold {len(synthetic)}."
        )
    main_real = _take(rng, real, n_real, "real", stratify)
    main_syn = _take(rng, synthetic, n_syn, "synthetic", stratify)
    used = {c.image_id for c in main_real + main_syn}
    rest_real = [c for c in real if c.image_id not in used]
    rest_syn = [c for c in synthetic if c.image_id not in used]
    prac = _take(rng, rest_real, p_real, "real", None) + _take(rng, rest_syn, p_syn, "synthetic", None)
    return Draw(main=main_real + main_syn, practice=prac)


def block_shape(ratio_real: int, ratio_synthetic: int, *, min_block: int = 4) -> tuple[int, int]:
    """Real and synthetic cases per block: the reduced ratio, doubled until the block has min_block cases."""
    g = gcd(ratio_real, ratio_synthetic) or 1
    r, s = ratio_real // g, ratio_synthetic // g
    m = 1
    while (r + s) * m < min_block:
        m += 1
    return r * m, s * m


def block_shapes(ratio_real: int, ratio_synthetic: int) -> list[tuple[int, int]]:
    """The block shapes an order draws from: the smallest of block_shape's multiples and the next two."""
    g = gcd(ratio_real, ratio_synthetic) or 1
    r, s = ratio_real // g, ratio_synthetic // g
    br, bs = block_shape(ratio_real, ratio_synthetic)
    m = (br + bs) // max(r + s, 1)
    return [(r * k, s * k) for k in (m, m + 1, m + 2)]


def reader_order(
    cases: list[tuple[int, str]], *, seed: int, reader_id: int, ratio_real: int, ratio_synthetic: int
) -> list[int]:
    """A reader's order of case ids, block-randomised; the same inputs always give the same order."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _ORDER, reader_id]))
    real = [cid for cid, truth in sorted(cases) if truth == "real"]
    syn = [cid for cid, truth in sorted(cases) if truth == "synthetic"]
    real = [real[i] for i in rng.permutation(len(real))]
    syn = [syn[i] for i in rng.permutation(len(syn))]
    shapes = block_shapes(ratio_real, ratio_synthetic)
    order: list[int] = []
    while True:
        # A block of a random size; near the end, only the sizes the remaining cases still fill.
        fits = [(br, bs) for br, bs in shapes if len(real) >= br and len(syn) >= bs and br + bs > 0]
        if not fits:
            break
        br, bs = fits[int(rng.integers(len(fits)))]
        block = real[:br] + syn[:bs]
        real, syn = real[br:], syn[bs:]
        order += [block[i] for i in rng.permutation(len(block))]
    tail = real + syn
    order += [tail[i] for i in rng.permutation(len(tail))]
    return order


def with_repeats(
    order: list[int], *, percent: int, gap: int, seed: int, reader_id: int
) -> list[tuple[int, int]]:
    """The order with a share of its cases shown again, as (case_id, presentation) pairs.

    Test-retest: `percent` % of the cases (rounded, at least one when percent > 0) come back
    unannounced, each at least `gap` cases after its first showing. Only cases shown early enough to
    leave that gap can repeat; an insertion point is drawn uniformly among the places that keep it.
    """
    if percent <= 0 or not order:
        return [(case_id, 1) for case_id in order]
    rng = np.random.default_rng(np.random.SeedSequence([seed, _RETEST, reader_id]))
    n = len(order)
    eligible = [i for i in range(n) if i + gap < n]  # first showings with room for the gap after them
    k = min(len(eligible), max(1, round(n * percent / 100)))
    chosen = sorted(eligible[i] for i in rng.permutation(len(eligible))[:k])
    # Insert after original index `at` (gap <= at - i), so later insertions only widen gaps.
    inserts: dict[int, list[int]] = {}
    for i in chosen:
        at = int(rng.integers(i + gap, n))
        inserts.setdefault(at, []).append(order[i])
    out: list[tuple[int, int]] = []
    for j, case_id in enumerate(order):
        out.append((case_id, 1))
        out += [(repeat, 2) for repeat in inserts.get(j, [])]
    return out
