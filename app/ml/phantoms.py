"""Procedural frontal (PA) chest radiograph phantoms with ChestX-ray14-style finding labels.

The app ships no chest X-ray data, so these phantoms feed the demo, the tests and the benchmarks. Anatomy
lives in phantom_anatomy.py, findings in phantom_findings.py; this module samples labels, composes the
attenuation layers and "exposes" them into an 8-bit film (0 = black air, 255 = white bone).

Determinism: image ``index`` of a run with ``seed`` draws from ``SeedSequence([seed, index, stream])``
streams (labels, anatomy, exposure, one per finding), so it depends only on (seed, index, size, config)
and ``phantom(5, seed=0)`` equals the sixth item of ``generate(10, seed=0)``. Forcing findings leaves the
anatomy and exposure of that index as they were (apart from what the findings themselves change, such as
the heart size), which lets tests isolate a finding's effect.

Label model: findings are sampled one by one in FINDINGS order; finding i is present with probability
``q_i * prod(lift[j, i] for the earlier findings j present)``. The bases ``q_i`` are solved (exactly, over
all 2**8 label sets) so that each marginal equals the configured prevalence times ``enrich``; a pair's lift
is then roughly P(a and b) / (P(a) P(b)), i.e. how much more often the two co-occur than independence says
(the realised value comes out 5-15 % lower, since the calibrated bases absorb part of it).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from app.ml.phantom_anatomy import Grid, make_grid, render_anatomy, sample_anatomy
from app.ml.phantom_findings import FINDINGS, adjust_anatomy, render_findings

__all__ = [
    "DEFAULT_CONFIG",
    "DEMO_CONFIG",
    "FINDINGS",
    "Phantom",
    "PhantomConfig",
    "generate",
    "phantom",
    "sample_findings",
    "target_prevalence",
]

# Images with each finding in ChestX-ray14 (NIH), out of 112,120 (FACTS.md).
_CXR14_TOTAL = 112_120
_CXR14_COUNTS = {
    "Atelectasis": 11_559,
    "Cardiomegaly": 2_776,
    "Effusion": 13_317,
    "Infiltration": 19_894,
    "Mass": 5_782,
    "Nodule": 6_331,
    "Pneumothorax": 5_302,
    "Consolidation": 4_667,
}
# Pairwise lifts. ChestX-ray14's exact pair counts are not quoted in FACTS.md; these rounded values are a
# documented choice that reproduces the well-known pattern (effusion with atelectasis, cardiomegaly and
# consolidation; mass with nodule) rather than a citation.
_CXR14_PREVALENCE = tuple((k, round(v / _CXR14_TOTAL, 4)) for k, v in _CXR14_COUNTS.items())
_CXR14_LIFT = (
    ("Atelectasis", "Effusion", 2.4),
    ("Cardiomegaly", "Effusion", 3.0),
    ("Effusion", "Consolidation", 2.3),
    ("Atelectasis", "Consolidation", 2.5),
    ("Mass", "Nodule", 2.5),
    ("Atelectasis", "Infiltration", 1.6),
    ("Effusion", "Infiltration", 1.7),
    ("Infiltration", "Consolidation", 1.5),
    ("Effusion", "Mass", 1.8),
    ("Effusion", "Pneumothorax", 1.6),
)
_STREAM_LABELS, _STREAM_ANATOMY, _STREAM_EXPOSURE, _STREAM_FINDING0 = 0, 1, 2, 10
_MAX_CONDITIONAL = 0.999  # no finding is ever certain given the others


@dataclass(frozen=True)
class PhantomConfig:
    """How often findings occur; the defaults are shaped like ChestX-ray14."""

    # (finding, share of images with it) for every name in FINDINGS, before enrichment.
    prevalence: tuple[tuple[str, float], ...] = _CXR14_PREVALENCE
    # (finding a, finding b, lift): P(a and b) / (P(a) P(b)) wanted for the pair; unlisted pairs get 1.
    lift: tuple[tuple[str, str, float], ...] = _CXR14_LIFT
    # Multiplies every prevalence, so that small demo sets still show findings (1.0 = as configured).
    enrich: float = 1.0
    # Upper bound on any finding's prevalence after enrichment.
    max_prevalence: float = 0.9

    def __post_init__(self) -> None:
        names = [k for k, _ in self.prevalence]
        if sorted(names) != sorted(FINDINGS):
            raise ValueError(f"prevalence must list each of {FINDINGS} once")
        if any(not 0.0 <= p <= 1.0 for _, p in self.prevalence):
            raise ValueError("prevalences must lie in [0, 1]")
        for a, b, value in self.lift:
            if a not in FINDINGS or b not in FINDINGS or a == b or value <= 0.0:
                raise ValueError(f"bad lift entry {(a, b, value)}")
        if self.enrich <= 0.0 or not 0.0 < self.max_prevalence < 1.0:
            raise ValueError("enrich must be > 0 and max_prevalence in (0, 1)")


DEFAULT_CONFIG = PhantomConfig()
# Enriched so that about half of the images show at least one finding (49.7 %; the default gives 44 %).
DEMO_CONFIG = PhantomConfig(enrich=1.22)


@dataclass(frozen=True, eq=False)
class Phantom:
    """One rendered film and its labels (eq=False: compare ``image`` bytes explicitly)."""

    image: np.ndarray  # (size, size) uint8, 0 = black (air), 255 = white (bone)
    findings: tuple[str, ...]  # subset of FINDINGS in FINDINGS order; empty = "No Finding"
    seed: int
    index: int
    patient_id: str  # f"phantom-{seed}-{index}"


def target_prevalence(config: PhantomConfig) -> dict[str, float]:
    """Each finding's intended share of images, after enrichment and the cap."""
    given = dict(config.prevalence)
    return {k: min(given[k] * config.enrich, config.max_prevalence) for k in FINDINGS}


@functools.lru_cache(maxsize=32)
def _label_model(config: PhantomConfig) -> tuple[np.ndarray, np.ndarray]:
    """Solve the bases q (F,) so the sequential model hits the target marginals; also the lifts (F, F)."""
    n = len(FINDINGS)
    lift = np.ones((n, n))  # lift[j, i] applies to finding i when an earlier finding j is present
    for a, b, value in config.lift:
        i, j = sorted((FINDINGS.index(a), FINDINGS.index(b)))
        lift[i, j] = value
    target = np.array(list(target_prevalence(config).values()))
    sets = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1  # (2**F, F) every label set
    q = target.copy()
    for _ in range(500):
        # Conditional probability of each finding given the earlier ones, for every label set: (2**F, F).
        earlier = np.triu(np.ones((n, n)), 1)  # [j, i] = 1 when j precedes i
        log_boost = sets @ (np.log(lift) * earlier)
        cond = np.clip(q[None, :] * np.exp(log_boost), 0.0, _MAX_CONDITIONAL)
        joint = np.prod(np.where(sets == 1, cond, 1.0 - cond), axis=1)  # (2**F,)
        marginal = joint @ sets
        if np.allclose(marginal, target, rtol=1e-7, atol=1e-10):
            break
        q = q * np.where(marginal > 0, target / np.maximum(marginal, 1e-12), 1.0)
    return q, lift


def sample_findings(rng: np.random.Generator, config: PhantomConfig = DEFAULT_CONFIG) -> tuple[str, ...]:
    """Draw one label set (subset of FINDINGS, in order); always consumes len(FINDINGS) uniforms."""
    q, lift = _label_model(config)
    u = rng.random(len(FINDINGS))
    present: list[int] = []
    for i in range(len(FINDINGS)):
        p = min(q[i] * float(np.prod([lift[j, i] for j in present])), _MAX_CONDITIONAL)
        if u[i] < p:
            present.append(i)
    return tuple(FINDINGS[i] for i in present)


def _expose(attenuation: np.ndarray, g: Grid, rng: np.random.Generator) -> np.ndarray:
    """Film response, exposure variation, quantum noise and detector blur: (N, N) float -> uint8."""
    v = rng.uniform(0.0, 1.0, 6)
    # Tone curve: a sigmoid in attenuation (the detector's log signal), with a toe in the lungs and a
    # shoulder in bone like film; its midpoint (exposure) and slope (contrast) vary per image.
    mid, slope, gamma = 0.54 + 0.14 * v[0], 2.5 + 0.7 * v[1], 0.9 + 0.2 * v[2]

    def tone(a: np.ndarray | float) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-slope * (np.asarray(a, dtype=np.float32) - mid)))

    lo, hi = tone(0.0), tone(2.0)
    img = ((tone(np.clip(attenuation, 0.0, None)) - lo) / (hi - lo)) ** gamma
    img = 0.02 * v[3] + (0.96 + 0.02 * v[3]) * img
    # Quantum noise is per pixel, so its std scales with the pixel count along a side; the detector blur
    # (fixed in film units) then leaves the same grain at every resolution. Bright (bone) = fewer photons.
    sigma_noise = (0.012 + 0.016 * v[4]) * g.size / 256.0
    img = img + sigma_noise * (0.5 + 0.8 * img) * rng.standard_normal(img.shape).astype(np.float32)
    img = ndimage.gaussian_filter(img, 0.005 / g.px)
    # Digital radiographs are edge-enhanced (unsharp mask at about 1 cm).
    img = img + (0.15 + 0.4 * v[5]) * (img - ndimage.gaussian_filter(img, 0.03 / g.px))
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def _stream(seed: int, index: int, stream: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, index, stream])


def phantom(
    index: int,
    *,
    size: int = 256,
    seed: int = 0,
    config: PhantomConfig = DEFAULT_CONFIG,
    findings: tuple[str, ...] | None = None,
) -> Phantom:
    """Render phantom number index of run seed; findings=None samples labels, a tuple forces them."""
    if size < 16 or index < 0 or seed < 0:
        raise ValueError("need size >= 16 and non-negative index and seed")
    if findings is None:
        names = sample_findings(np.random.default_rng(_stream(seed, index, _STREAM_LABELS)), config)
    else:
        unknown = set(findings) - set(FINDINGS)
        if unknown:
            raise ValueError(f"unknown findings {sorted(unknown)}; choose from {FINDINGS}")
        names = tuple(k for k in FINDINGS if k in findings)
    anatomy = sample_anatomy(np.random.default_rng(_stream(seed, index, _STREAM_ANATOMY)))
    seeds = {k: _stream(seed, index, _STREAM_FINDING0 + FINDINGS.index(k)) for k in names}
    anatomy = adjust_anatomy(anatomy, seeds)
    g = make_grid(anatomy, size)
    base = render_anatomy(anatomy, g)
    fx = render_findings(anatomy, g, seeds)
    clear = 1.0 - fx.opacity  # lung air left after fluid/tissue replaced some of it
    lung_air = base.air * clear * (1.0 + 0.35 * fx.ptx)  # pleural air: no lung tissue, a little darker
    markings = base.markings * base.lung * clear * (1.0 - fx.ptx)
    attenuation = base.tissue + base.bone - 0.62 * lung_air + markings + fx.extra  # (N, N)
    image = _expose(attenuation, g, np.random.default_rng(_stream(seed, index, _STREAM_EXPOSURE)))
    return Phantom(image=image, findings=names, seed=seed, index=index, patient_id=f"phantom-{seed}-{index}")


def generate(
    n: int, *, size: int = 256, seed: int = 0, config: PhantomConfig = DEFAULT_CONFIG
) -> Iterator[Phantom]:
    """Yield phantoms 0..n-1 of run seed (lazily; each equals phantom(i, ...))."""
    for i in range(n):
        yield phantom(i, size=size, seed=seed, config=config)
