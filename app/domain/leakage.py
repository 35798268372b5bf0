"""The leakage gate: before a study launches, can anything a reader receives besides the image itself tell
its synthetic cases from its real ones?

Every case goes through one rendering path (app.domain.rendering), so file-level cues are absent by
construction; the gate checks what readers will actually receive, so a faulty import or a future change to
that path cannot slip through. It splits what it checks in two:

1. The file channel blocks. Everything a reader could learn without looking at the anatomy: dimensions,
   bit depth, colour type, the chunk list (metadata, text, ICC) and the byte length. These are checked for
   exact equality, not estimated: the renderer writes uncompressed PNGs, so every case of a study has the
   same length by construction, and one odd file is enough to block, because a reader who notices it
   knows that case's truth. (Ids are opaque and per reader, and the server serves every file alike.)
2. Content separability informs and never blocks (app.domain.separability): a cross-validated classifier
   on intensity, noise and spectrum, with a permutation p-value. How the images look is what readers are
   there to judge; the figure stands beside their AUC.
"""

from __future__ import annotations

import itertools
import struct
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from app.domain import separability
from app.domain.rendering import png_chunks

EXPECTED_CHUNKS = ("IHDR", "IDAT", "IEND")


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


@dataclass
class LeakageReport:
    """What the gate found; stored with the study and shown on its page."""

    passed: bool
    n_real: int
    n_synthetic: int
    # Files that are not what the renderer writes: {"truth": ..., "shape": ..., "count": ...} per group.
    odd_files: list[dict] = field(default_factory=list)
    # Files whose byte length differs from the study's usual one: {"truth", "bytes", "count"} per group.
    odd_lengths: list[dict] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why launch is blocked (the file channel only)
    separability: dict | None = None  # app.domain.separability.Separability as JSON; never blocks
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


def _odd_lengths(lengths: Sequence[int], truths: Sequence[str]) -> list[dict]:
    """Every (truth, length) group of files whose byte length is not the study's most common one."""
    usual = Counter(lengths).most_common(1)[0][0]
    odd = Counter((t, n) for n, t in zip(lengths, truths, strict=True) if n != usual)
    return [{"truth": t, "bytes": n, "count": k, "usual": usual} for (t, n), k in sorted(odd.items())]


def check(load: Callable[[int], bytes], truths: Sequence[str], *, size: int, seed: int = 0) -> LeakageReport:
    """The file channel on every case rendered at `size` and the separability figure on a sample:
    `load(i)` gives case i's PNG and `truths[i]` its truth."""
    facts, lengths = [], []
    for i in range(len(truths)):  # one file in memory at a time: a big study's PNGs would not fit
        png = load(i)
        facts.append(file_facts(png))
        lengths.append(len(png))
    report = LeakageReport(
        passed=True,
        n_real=sum(t != "synthetic" for t in truths),
        n_synthetic=sum(t == "synthetic" for t in truths),
    )
    report.odd_files = _odd_files(facts, truths, size)
    for item in report.odd_files:
        report.reasons.append(
            f"{item['count']} {item['truth']} image(s) are stored as {item['shape']}, unlike the others: "
            "a reader could tell them by the file alone."
        )
    report.odd_lengths = _odd_lengths(lengths, truths) if lengths else []
    for item in report.odd_lengths:
        report.reasons.append(
            f"{item['count']} {item['truth']} image(s) are {item['bytes']:,} bytes long where the others are "
            f"{item['usual']:,}: a reader could tell them by the download's size."
        )
    found = separability.of_cases(load, list(truths), seed=seed)
    if found is None:
        report.note = (
            f"The separability figure needs at least {separability.MIN_PER_GROUP} real and "
            f"{separability.MIN_PER_GROUP} synthetic cases; the file channel was checked."
        )
    else:
        report.separability = found.to_json() | {"sentence": found.sentence()}
    report.passed = not report.reasons
    return report
