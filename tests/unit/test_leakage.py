"""The leakage gate's features and classifier on real rendered phantoms (no database)."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from app.domain import leakage
from app.domain.rendering import png_chunks, render_array
from app.stats.roc import auc as auc_from_scores

pytest.importorskip("scipy")
phantoms = pytest.importorskip("app.ml.phantoms")


def _films(n: int, seed: int, size: int = 64) -> list[bytes]:
    return [render_array(p.image, size=size).png for p in phantoms.generate(n, size=size, seed=seed)]


@pytest.fixture(scope="module")
def real() -> list[bytes]:
    return _films(24, seed=0)


@pytest.fixture(scope="module")
def other() -> list[bytes]:
    return _films(24, seed=1)


def _gate(real: list[bytes], synthetic: list[bytes]) -> leakage.LeakageReport:
    pngs = real + synthetic
    truths = ["real"] * len(real) + ["synthetic"] * len(synthetic)
    return leakage.check(lambda i: pngs[i], truths, size=64, seed=3)


def test_logistic_regression_separates_what_is_separable_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0.0, 1.0], 60)
    informative = rng.normal(size=(120, 3)) + y[:, None] * 1.5
    noise = rng.normal(size=(120, 3))
    assert (
        auc_from_scores(y.astype(bool), leakage.cross_validated_scores(informative, y, folds=5, seed=0)) > 0.8
    )
    assert auc_from_scores(y.astype(bool), leakage.cross_validated_scores(noise, y, folds=5, seed=0)) < 0.65


def test_two_phantom_sets_pass(real: list[bytes], other: list[bytes]) -> None:
    report = _gate(real, other)
    assert report.passed, report.reasons
    assert report.auc is not None
    assert report.auc < leakage.AUC_LIMIT or report.auc_low <= 0.5  # near chance, as it should be
    assert report.odd_files == [] and len(report.cues) == 3


def test_another_size_is_blocked(real: list[bytes], other: list[bytes]) -> None:
    resized = [render_array(np.asarray(Image.open(io.BytesIO(p))), size=72).png for p in other]
    report = _gate(real, resized)
    assert not report.passed
    assert report.odd_files == [
        {"truth": "synthetic", "shape": "72×72, 8-bit grey, IHDR IDAT IEND", "count": 24}
    ]
    assert report.auc == pytest.approx(1.0)


def with_text(png: bytes) -> bytes:
    """The same PNG re-saved with a tEXt chunk, as a tool that stamps its name would write it."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "some GAN 1.0")
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def test_metadata_on_a_single_file_is_blocked(real: list[bytes], other: list[bytes]) -> None:
    report = _gate(real, [with_text(other[0]), *other[1:]])
    assert not report.passed
    assert [o["count"] for o in report.odd_files] == [1]
    assert "tEXt" in report.odd_files[0]["shape"]


def test_a_pixel_cue_is_found_and_named(real: list[bytes], other: list[bytes]) -> None:
    # Same structure, but synthetic films carry extra fine-grained noise: only the statistics can tell.
    rng = np.random.default_rng(1)
    noisy = []
    for p in other:
        pixels = np.asarray(Image.open(io.BytesIO(p)), dtype=np.float64)
        noisy.append(
            render_array(
                np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype(np.uint8), size=64
            ).png
        )
    report = _gate(real, noisy)
    assert not report.passed and report.odd_files == []
    assert report.auc > 0.9 and report.auc_low > 0.5
    assert report.cues[0]["feature"] in {
        "high-pass noise level",
        "spectrum power, high band",
        "file size",
        "compression ratio",
    }
    assert "AUC" in report.reasons[0]


def test_too_few_cases_check_structure_only(real: list[bytes], other: list[bytes]) -> None:
    report = _gate(real[:3], other[:3])
    assert report.passed and report.auc is None and "at least" in report.note


def test_file_facts_read_the_header() -> None:
    png = render_array(np.zeros((40, 40), dtype=np.uint8), size=32).png
    facts = leakage.file_facts(png)
    assert (facts.width, facts.height, facts.bit_depth, facts.colour_type) == (32, 32, 8, 0)
    assert facts.chunks == ("IHDR", "IDAT", "IEND")
    assert zlib.crc32(png[12:29]) == int.from_bytes(png[29:33], "big")  # the IHDR we parsed is intact


def test_a_large_image_split_over_several_idat_chunks_is_not_odd() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (512, 512)).astype(np.uint8)  # incompressible
    pngs = [render_array(noise, size=512).png, render_array(noise[::-1], size=512).png]
    assert png_chunks(pngs[0]).count("IDAT") > 1
    assert leakage.file_facts(pngs[0]).chunks == ("IHDR", "IDAT", "IEND")
    report = leakage.check(lambda i: pngs[i], ["real", "synthetic"], size=512)
    assert report.passed and report.odd_files == []
