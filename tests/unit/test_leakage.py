"""The leakage gate on real rendered phantoms (no database): the file channel blocks on exact differences;
content separability informs, with a permutation p-value that rejects at its nominal rate on null studies."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from app.domain import leakage, separability
from app.domain.rendering import png_chunks, render_array
from app.stats.roc import auc as auc_from_scores
from tests.factories import compressed, with_text

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
    scores = separability.cross_validated_scores
    assert auc_from_scores(y.astype(bool), scores(informative, y, folds=5, seed=0)) > 0.8
    assert auc_from_scores(y.astype(bool), scores(noise, y, folds=5, seed=0)) < 0.65


@pytest.mark.slow
def test_the_permutation_p_rejects_null_studies_at_its_nominal_rate() -> None:
    # 200 null studies of 11 + 11 cases (where a Hanley–McNeil gate blocked 9 % against 2.5 %): at
    # alpha 0.05 the permutation test must reject about 5 % (binomial 99 % range for 200: 2 to 19).
    rng = np.random.default_rng(7)
    y = np.repeat([0.0, 1.0], 11)
    rejections = 0
    for study in range(200):
        x = rng.normal(size=(22, len(separability.FEATURES)))
        found = separability.separability(x, y, seed=study, permutations=39, bootstraps=0)
        rejections += found.p_value <= 0.05
    assert 2 <= rejections <= 19, rejections


def test_a_real_difference_gets_a_small_p_and_an_interval_around_its_auc() -> None:
    rng = np.random.default_rng(8)
    y = np.repeat([0.0, 1.0], 30)
    x = rng.normal(size=(60, len(separability.FEATURES)))
    x[:, :4] += y[:, None] * 1.2
    found = separability.separability(x, y, seed=0, permutations=99, bootstraps=100)
    assert found.auc > 0.85 and found.p_value == pytest.approx(0.01)
    assert found.auc_low < found.auc < found.auc_high <= 1.0 and found.auc_low > 0.6


def test_two_phantom_sets_pass_with_the_figure_shown(real: list[bytes], other: list[bytes]) -> None:
    report = _gate(real, other)
    assert report.passed, report.reasons
    assert report.odd_files == [] and report.odd_lengths == []
    sep = report.separability
    assert sep is not None and len(sep["cues"]) == 3 and sep["p_value"] > 0.01  # one distribution
    assert "tells these sets apart with cross-validated AUC" in sep["sentence"]


def test_a_pixel_cue_informs_and_does_not_block(real: list[bytes], other: list[bytes]) -> None:
    # Same files, but synthetic films carry extra fine-grained noise: how they look, for readers to judge.
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
    assert report.passed and report.reasons == [] and report.odd_lengths == []
    sep = report.separability
    assert sep["auc"] > 0.75 and sep["p_value"] <= 0.01 and sep["auc_low"] > 0.5
    assert sep["cues"][0]["feature"] in {"high-pass noise level", "spectrum power, high band"}


def test_another_size_is_blocked(real: list[bytes], other: list[bytes]) -> None:
    resized = [render_array(np.asarray(Image.open(io.BytesIO(p))), size=72).png for p in other]
    report = _gate(real, resized)
    assert not report.passed
    assert report.odd_files == [
        {"truth": "synthetic", "shape": "72×72, 8-bit grey, IHDR IDAT IEND", "count": 24}
    ]


def test_another_byte_length_is_blocked_even_for_one_file(real: list[bytes], other: list[bytes]) -> None:
    report = _gate(real, [compressed(other[0]), *other[1:]])
    assert not report.passed and report.odd_files == []  # same header, same chunks: only the length differs
    assert [(o["truth"], o["count"]) for o in report.odd_lengths] == [("synthetic", 1)]
    assert "by the download's size" in report.reasons[0]


def test_metadata_on_a_single_file_is_blocked(real: list[bytes], other: list[bytes]) -> None:
    report = _gate(real, [with_text(other[0]), *other[1:]])
    assert not report.passed
    assert [o["count"] for o in report.odd_files] == [1]
    assert "tEXt" in report.odd_files[0]["shape"]


def test_too_few_cases_check_the_file_channel_only(real: list[bytes], other: list[bytes]) -> None:
    report = _gate(real[:3], other[:3])
    assert report.passed and report.separability is None and "at least" in report.note


def test_file_facts_read_the_header() -> None:
    png = render_array(np.zeros((40, 40), dtype=np.uint8), size=32).png
    facts = leakage.file_facts(png)
    assert (facts.width, facts.height, facts.bit_depth, facts.colour_type) == (32, 32, 8, 0)
    assert facts.chunks == ("IHDR", "IDAT", "IEND")
    assert zlib.crc32(png[12:29]) == int.from_bytes(png[29:33], "big")  # the IHDR we parsed is intact


def test_several_idat_chunks_are_the_same_structure() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (512, 512)).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(noise, "L").save(out, format="PNG")  # Pillow splits its IDAT at 64 KiB
    assert png_chunks(out.getvalue()).count("IDAT") > 1
    assert leakage.file_facts(out.getvalue()).chunks == ("IHDR", "IDAT", "IEND")
