"""The leakage gate: before a study launches, can anything besides anatomy tell its synthetic images from
its real ones?

Every case goes through one rendering path (app.domain.rendering), so file-level cues should be absent by
construction; the gate checks what readers will actually receive, so a faulty import or a future change to
that path cannot slip through. Two tests on the rendered PNGs of the study's cases:

1. Structure, per file: dimensions, bit depth, colour type and the chunk list must be the same for every
   case. One odd file is enough to block, because a reader who notices it knows that case's truth.
2. Statistics, over groups: a cross-validated logistic regression on file and pixel features (byte size,
   compression ratio, dimensions, chunks, intensity histogram moments, noise level and spectrum) must stay
   near chance. Blocked when its out-of-fold AUC is at least 0.6 *and* its 95 % interval excludes 0.5: with
   the few dozen cases of a pilot study a chance AUC of 0.6 is common, and a gate that blocked on noise
   would teach people to ignore it. A strong cue (AUC near 1) is significant already at ten cases a group.
"""

from __future__ import annotations

import io
import itertools
import struct
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

from app.domain.rendering import png_chunks
from app.stats.roc import auc as auc_from_scores
from app.stats.roc import hanley_mcneil_interval

AUC_LIMIT = 0.6
MAX_PER_GROUP = 200  # statistics on a seeded sample; the structure check reads every case
MIN_PER_GROUP = 5
SPECTRUM_SIDE = 256  # the noise spectrum is measured on a central crop of this side
EXPECTED_CHUNKS = ("IHDR", "IDAT", "IEND")

FEATURES = (
    ("log_bytes", "file size"),
    ("compression", "compression ratio"),
    ("width", "width"),
    ("height", "height"),
    ("chunks", "number of PNG chunks"),
    ("mean", "mean intensity"),
    ("std", "intensity spread"),
    ("skew", "histogram skewness"),
    ("kurtosis", "histogram kurtosis"),
    ("clipped", "share of black or white pixels"),
    ("noise", "high-pass noise level"),
    ("band_low", "spectrum power, low band"),
    ("band_mid", "spectrum power, middle band"),
    ("band_high", "spectrum power, high band"),
)


@dataclass(frozen=True)
class FileFacts:
    """What the PNG header says: (width, height, bit depth, colour type) and the chunk names in order."""

    width: int
    height: int
    bit_depth: int
    colour_type: int
    chunks: tuple[str, ...]

    @property
    def shape(self) -> str:
        """A readable summary, e.g. '256×256, 8-bit grey, IHDR IDAT IEND'."""
        colour = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}.get(self.colour_type, "?")
        names = " ".join(dict.fromkeys(self.chunks))
        return f"{self.width}×{self.height}, {self.bit_depth}-bit {colour}, {names}"


def file_facts(png: bytes) -> FileFacts:
    """Parse the IHDR of a PNG (never trusting the decoder to report what the file carries)."""
    names = png_chunks(png)
    if not names or names[0] != "IHDR":
        raise ValueError("the PNG does not start with IHDR")
    width, height, bit_depth, colour_type = struct.unpack(">IIBB", png[16:26])
    # The encoder splits the image data into IDAT chunks of 64 KiB: their number follows the file size,
    # which is a feature of its own; the structure is the sequence of chunk kinds.
    chunks = tuple(name for name, _ in itertools.groupby(names))
    return FileFacts(width, height, bit_depth, colour_type, chunks)


def image_features(png: bytes) -> np.ndarray:
    """The feature vector (len(FEATURES),) of one rendered PNG."""
    facts = file_facts(png)
    with Image.open(io.BytesIO(png)) as im:
        grey = np.asarray(im.convert("L"), dtype=np.float64) / 255.0  # (H, W)
    mean, std = grey.mean(), grey.std()
    z = (grey - mean) / std if std > 0 else np.zeros_like(grey)
    crop = _central(grey, SPECTRUM_SIDE)  # noise and spectrum on a bounded crop: cost independent of size
    # Noise: what a 3×3 mean filter removes; a generator's texture and a detector's noise differ here.
    padded = np.pad(crop, 1, mode="edge")
    local = sum(padded[i : i + crop.shape[0], j : j + crop.shape[1]] for i in range(3) for j in range(3)) / 9
    return np.array(
        [
            np.log(len(png)),
            grey.size / len(png),
            facts.width,
            facts.height,
            len(facts.chunks),
            mean,
            std,
            float(np.mean(z**3)),
            float(np.mean(z**4)),
            float(np.mean((grey <= 0.0) | (grey >= 1.0))),
            float(np.std(crop - local)),
            *_spectrum_bands(crop),
        ]
    )


def _central(grey: np.ndarray, side: int) -> np.ndarray:
    """The central (s, s) crop of (H, W), s = min(side, H, W)."""
    h, w = grey.shape
    side = min(side, h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return grey[top : top + side, left : left + side]


def _spectrum_bands(crop: np.ndarray) -> tuple[float, float, float]:
    """Log share of spectral power in radial bands 1/16-1/8, 1/8-1/4 and 1/4-1/2 cycles per pixel."""
    side = crop.shape[0]
    window = np.outer(np.hanning(side), np.hanning(side))  # against the edge's cross in the spectrum
    power = np.abs(np.fft.fft2((crop - crop.mean()) * window)) ** 2  # (side, side)
    f = np.fft.fftfreq(side)
    radius = np.hypot(f[:, None], f[None, :])
    total = power.sum() + 1e-12
    edges = ((1 / 16, 1 / 8), (1 / 8, 1 / 4), (1 / 4, 0.75))  # 0.75 keeps the corners (radius up to 0.71)
    return tuple(
        float(np.log(power[(radius >= lo) & (radius < hi)].sum() / total + 1e-12)) for lo, hi in edges
    )


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1.0, steps: int = 50) -> np.ndarray:
    """Weights (D + 1,) of an L2-penalised logistic regression (Newton); x (N, D), y (N,) in {0, 1}."""
    design = np.hstack([np.ones((len(x), 1)), x])  # (N, D + 1), column 0 the unpenalised intercept
    penalty = np.eye(design.shape[1]) * l2
    penalty[0, 0] = 0.0
    w = np.zeros(design.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -30, 30)))
        grad = design.T @ (p - y) + penalty @ w
        hess = (design * (p * (1 - p))[:, None]).T @ design + penalty
        step = np.linalg.solve(hess + 1e-9 * np.eye(len(w)), grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def cross_validated_scores(x: np.ndarray, y: np.ndarray, *, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold logits (N,) of the logistic regression, folds stratified by y, scaling fit per fold."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    for label in (0, 1):
        members = rng.permutation(np.flatnonzero(y == label))
        fold[members] = np.arange(len(members)) % folds
    scores = np.empty(len(y))
    for k in range(folds):
        train, test = fold != k, fold == k
        centre, scale = x[train].mean(axis=0), x[train].std(axis=0)
        scale[scale == 0] = 1.0  # a constant column carries no information within the training fold
        w = fit_logistic((x[train] - centre) / scale, y[train])
        scores[test] = w[0] + ((x[test] - centre) / scale) @ w[1:]
    return scores


@dataclass
class LeakageReport:
    """What the gate found; stored with the study and shown on its page."""

    passed: bool
    n_real: int
    n_synthetic: int
    auc: float | None = None
    auc_low: float | None = None
    auc_high: float | None = None
    folds: int = 0
    # Files that are not what the renderer writes: {"truth": ..., "shape": ..., "count": ...} per group.
    odd_files: list[dict] = field(default_factory=list)
    # The strongest single cues: {"feature": label, "auc": separation of that feature alone}.
    cues: list[dict] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


def _odd_files(facts: Sequence[FileFacts], truths: Sequence[str], size: int) -> list[dict]:
    """Every (truth, shape) group of files that are not what the renderer writes: size², 8-bit grey, bare."""
    expected = FileFacts(size, size, 8, 0, EXPECTED_CHUNKS)
    odd: dict[tuple[str, str], int] = {}
    for f, truth in zip(facts, truths, strict=True):
        if f != expected:
            odd[(truth, f.shape)] = odd.get((truth, f.shape), 0) + 1
    return [{"truth": t, "shape": s, "count": n} for (t, s), n in sorted(odd.items())]


def check(load: Callable[[int], bytes], truths: Sequence[str], *, size: int, seed: int = 0) -> LeakageReport:
    """Both tests on cases rendered at `size`: `load(i)` gives case i's PNG and `truths[i]` its truth."""
    # One file in memory at a time: a big study's PNGs together would not fit.
    facts = [file_facts(load(i)) for i in range(len(truths))]
    y_all = np.array([t == "synthetic" for t in truths], dtype=float)
    report = LeakageReport(passed=True, n_real=int((y_all == 0).sum()), n_synthetic=int(y_all.sum()))
    report.odd_files = _odd_files(facts, truths, size)
    for item in report.odd_files:
        report.reasons.append(
            f"{item['count']} {item['truth']} image(s) are stored as {item['shape']}, unlike the others: "
            "a reader could tell them by the file alone."
        )
    if min(report.n_real, report.n_synthetic) < MIN_PER_GROUP:
        report.note = (
            f"The statistical test needs at least {MIN_PER_GROUP} real and {MIN_PER_GROUP} synthetic cases; "
            "only the file structure was checked."
        )
    else:
        _statistics(report, load, y_all, seed)
    report.passed = not report.reasons
    return report


def _statistics(report: LeakageReport, load: Callable[[int], bytes], y_all: np.ndarray, seed: int) -> None:
    """The cross-validated regression on a seeded sample of at most MAX_PER_GROUP cases a group."""
    rng = np.random.default_rng(seed)
    chosen = np.concatenate(
        [rng.permutation(np.flatnonzero(y_all == label))[:MAX_PER_GROUP] for label in (0, 1)]
    )
    x = np.stack([image_features(load(int(i))) for i in chosen])  # (N, F)
    y = y_all[chosen]
    n_pos, n_neg = int(y.sum()), int((y == 0).sum())
    report.folds = min(5, n_pos, n_neg)
    scores = cross_validated_scores(x, y, folds=report.folds, seed=seed)
    report.auc = auc_from_scores(y.astype(bool), scores)
    report.auc_low, report.auc_high = hanley_mcneil_interval(report.auc, n_pos, n_neg)
    single = [abs(auc_from_scores(y.astype(bool), x[:, j]) - 0.5) + 0.5 for j in range(x.shape[1])]
    ranked = sorted(zip(single, (label for _, label in FEATURES), strict=True), reverse=True)
    report.cues = [{"feature": label, "auc": round(a, 3)} for a, label in ranked[:3]]
    if report.auc >= AUC_LIMIT and report.auc_low > 0.5:
        strongest = ", ".join(f"{c['feature']} ({c['auc']:.2f})" for c in report.cues)
        report.reasons.append(
            f"A logistic regression on file and pixel statistics tells synthetic from real with "
            f"cross-validated AUC {report.auc:.2f} (95 % CI {report.auc_low:.2f}–{report.auc_high:.2f}), "
            f"at least {AUC_LIMIT} and above chance. Strongest single cues: {strongest}."
        )
