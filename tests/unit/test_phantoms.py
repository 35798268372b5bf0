"""Tests of the procedural chest radiograph phantoms: determinism, labels, anatomy and findings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from app.ml.phantom_anatomy import sample_anatomy
from app.ml.phantom_findings import adjust_anatomy
from app.ml.phantoms import (
    DEFAULT_CONFIG,
    DEMO_CONFIG,
    FINDINGS,
    Phantom,
    PhantomConfig,
    generate,
    phantom,
    sample_findings,
    target_prevalence,
)

N = 128  # forced-finding checks run at this size: fast, yet every finding spans several pixels
INDICES = range(8)


def _img(index: int, findings: tuple[str, ...], size: int = N) -> np.ndarray:
    return phantom(index, size=size, findings=findings).image.astype(np.float64)


def _labels(config: PhantomConfig, n: int = 4000, seed: int = 1) -> list[tuple[str, ...]]:
    rng = np.random.default_rng(seed)
    return [sample_findings(rng, config) for _ in range(n)]


def _share(labels: list[tuple[str, ...]], *names: str) -> float:
    return float(np.mean([all(k in lab for k in names) for lab in labels]))


# --- determinism and API -------------------------------------------------------------------------------


def test_same_arguments_give_identical_bytes() -> None:
    a, b = phantom(3, size=64, seed=7), phantom(3, size=64, seed=7)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.findings == b.findings


def test_different_seeds_and_indices_differ() -> None:
    base = phantom(0, size=64, seed=0).image
    assert not np.array_equal(base, phantom(0, size=64, seed=1).image)
    assert not np.array_equal(base, phantom(1, size=64, seed=0).image)


def test_phantom_equals_the_matching_item_of_generate() -> None:
    items = list(generate(10, size=64, seed=0))
    assert len(items) == 10
    single = phantom(5, size=64, seed=0)
    assert items[5].image.tobytes() == single.image.tobytes()
    assert items[5].findings == single.findings
    assert [p.index for p in items] == list(range(10))


@pytest.mark.parametrize("size", [16, 64, 128, 256])
def test_shape_dtype_and_range(size: int) -> None:
    p = phantom(2, size=size)
    assert isinstance(p, Phantom)
    assert p.image.shape == (size, size)
    assert p.image.dtype == np.uint8
    if size >= 64:  # black air outside the body, near-white bone and soft tissue
        assert p.image.min() < 25 and p.image.max() > 200


def test_labels_are_ordered_subsets_and_ids_are_stable() -> None:
    seen = set()
    for p in generate(60, size=16, seed=3, config=DEMO_CONFIG):
        assert set(p.findings) <= set(FINDINGS)
        assert list(p.findings) == sorted(p.findings, key=FINDINGS.index)
        assert p.patient_id == f"phantom-3-{p.index}" and p.seed == 3
        seen.update(p.findings)
    assert len(seen) >= 4  # the sampled labels actually vary


def test_forced_findings_are_normalised_and_validated() -> None:
    p = phantom(0, size=32, findings=("Nodule", "Atelectasis", "Nodule"))
    assert p.findings == ("Atelectasis", "Nodule")
    assert phantom(0, size=32, findings=()).findings == ()
    with pytest.raises(ValueError):
        phantom(0, size=32, findings=("Pneumonia",))
    with pytest.raises(ValueError):
        phantom(0, size=8)


def test_config_rejects_unknown_names_and_bad_values() -> None:
    with pytest.raises(ValueError):
        PhantomConfig(lift=(("Effusion", "Hernia", 2.0),))
    with pytest.raises(ValueError):
        PhantomConfig(prevalence=(("Effusion", 0.1),))
    with pytest.raises(ValueError):
        PhantomConfig(enrich=0.0)


def test_sampled_labels_follow_the_config() -> None:
    only = tuple((k, 0.9 if k == "Cardiomegaly" else 0.0) for k in FINDINGS)
    config = PhantomConfig(prevalence=only, lift=())
    labels = [p.findings for p in generate(30, size=16, config=config)]
    assert all(lab in ((), ("Cardiomegaly",)) for lab in labels)
    assert sum(lab == ("Cardiomegaly",) for lab in labels) >= 20


# --- anatomy ---------------------------------------------------------------------------------------------


def test_lungs_are_darker_than_mediastinum_and_air_is_darkest() -> None:
    for i in INDICES:
        im = _img(i, ())
        rows = slice(int(0.3 * N), int(0.45 * N))
        lungs = 0.5 * (
            im[rows, int(0.2 * N) : int(0.32 * N)].mean() + im[rows, int(0.68 * N) : int(0.8 * N)].mean()
        )
        mediastinum = im[rows, int(0.47 * N) : int(0.53 * N)].mean()
        corner = im[: int(0.05 * N), : int(0.1 * N)].mean()
        assert mediastinum > lungs + 40
        assert corner < lungs


def _central_run(im: np.ndarray) -> tuple[float, float]:
    """Mean extent (left, right of the centre column) of the bright central region at heart level."""
    n = im.shape[0]
    c, left, right = n // 2, [], []
    for r in range(int(0.55 * n), int(0.65 * n)):
        row = ndimage.uniform_filter1d(im[r], 3)
        lung = min(np.median(row[int(0.2 * n) : int(0.3 * n)]), np.median(row[int(0.7 * n) : int(0.8 * n)]))
        bright = row > 0.5 * (row[c] + lung)
        lo = c
        while lo > 0 and bright[lo - 1]:
            lo -= 1
        hi = c
        while hi < n - 1 and bright[hi + 1]:
            hi += 1
        left.append(c - lo)
        right.append(hi - c)
    return float(np.mean(left)), float(np.mean(right))


def test_heart_bulges_to_the_image_right() -> None:
    # Radiological convention: the patient's left (the cardiac apex) is on the image right.
    for i in INDICES:
        left, right = _central_run(_img(i, ()))
        assert right > left + 2


def test_right_hemidiaphragm_is_higher() -> None:
    def dome_row(im: np.ndarray, x: float) -> int:
        col = ndimage.uniform_filter1d(im[:, int((x - 0.04) * N) : int((x + 0.04) * N)].mean(axis=1), 3)
        thr = 0.5 * (
            np.median(col[int(0.3 * N) : int(0.5 * N)]) + np.median(col[int(0.85 * N) : int(0.95 * N)])
        )
        r = int(0.5 * N)
        while col[r] < thr:
            r += 1
        return r

    diffs = []
    for i in INDICES:
        im = _img(i, ())
        diffs.append(dome_row(im, 0.78) - dome_row(im, 0.22))  # left row minus right row
    assert np.mean(diffs) > 1.5 and sum(d > 0 for d in diffs) >= 6


def test_same_film_at_every_resolution() -> None:
    small = _img(4, ("Effusion",), size=64)
    big = _img(4, ("Effusion",), size=256).reshape(64, 4, 64, 4).mean(axis=(1, 3))
    assert np.corrcoef(small.ravel(), big.ravel())[0, 1] > 0.97
    assert np.abs(small - big).mean() < 8


# --- findings --------------------------------------------------------------------------------------------


def test_forced_finding_leaves_the_rest_of_the_film_alone() -> None:
    normal, nodule = _img(1, ()), _img(1, ("Nodule",))
    assert (np.abs(nodule - normal) > 8).mean() < 0.02


def test_cardiomegaly_widens_the_cardiac_silhouette() -> None:
    for i in INDICES:
        before, after = _central_run(_img(i, ())), _central_run(_img(i, ("Cardiomegaly",)))
        assert sum(after) > 1.15 * sum(before)
        assert after[1] - before[1] >= after[0] - before[0]  # mostly the left ventricle, image right


def test_cardiothoracic_ratio_crosses_one_half() -> None:
    seeds = {"Cardiomegaly": np.random.SeedSequence([0])}
    for s in range(50):
        normal = sample_anatomy(np.random.default_rng(s))
        assert normal.ctr() < 0.5
        assert adjust_anatomy(normal, seeds).ctr() > 0.55 - 1e-9


def test_effusion_opacifies_a_lung_base() -> None:
    rows = slice(int(0.62 * N), int(0.8 * N))
    sides = (slice(int(0.08 * N), int(0.42 * N)), slice(int(0.58 * N), int(0.92 * N)))
    for i in INDICES:
        before, after = _img(i, ()), _img(i, ("Effusion",))
        gain = [after[rows, s].mean() - before[rows, s].mean() for s in sides]
        assert max(gain) > 5
        assert min(gain) > -0.5  # nothing gets darker


def _texture(im: np.ndarray, mask: np.ndarray) -> float:
    """Variance of the fine detail (image minus a 1-pixel blur) inside mask."""
    return float((im - ndimage.gaussian_filter(im, 1.0))[mask].var())


def test_pneumothorax_darkens_an_apex_and_removes_markings() -> None:
    for i in INDICES:
        normal, ptx = _img(i, ()), _img(i, ("Pneumothorax",))
        darker = ndimage.gaussian_filter(normal - ptx, N / 64) > 5
        band = ndimage.binary_erosion(darker, iterations=4)  # inside the pleural air, off its edges
        rows, cols = np.nonzero(band)
        assert band.sum() > 30
        assert rows.mean() < 0.5 * N  # upper zone
        assert abs(cols.mean() - N / 2) > 0.15 * N  # one side, away from the midline

        assert _texture(ptx, band) < 0.92 * _texture(normal, band)


@pytest.mark.parametrize(
    ("name", "max_diameter", "min_diameter"), [("Nodule", 0.08, 0.0), ("Mass", 0.25, 0.06)]
)
def test_nodule_and_mass_add_one_local_bright_blob(
    name: str, max_diameter: float, min_diameter: float
) -> None:
    for i in INDICES:
        diff = _img(i, (name,)) - _img(i, ())
        assert diff.max() > 30 and diff.min() > -0.25 * diff.max()  # only the edge-enhancement halo
        labels, count = ndimage.label(diff > 0.5 * diff.max())
        sizes = np.bincount(labels.ravel())[1:]
        assert sizes.max() > 0.8 * sizes.sum()  # one blob
        diameter = 2.0 * np.sqrt(sizes.max() / np.pi) / N  # of the film width, at half maximum
        assert min_diameter < diameter < max_diameter


@pytest.mark.parametrize("name", ["Atelectasis", "Consolidation", "Infiltration"])
def test_airspace_findings_add_local_opacity(name: str) -> None:
    for i in INDICES:
        diff = ndimage.gaussian_filter(_img(i, (name,)) - _img(i, ()), 1.0)
        assert diff.max() > 8
        if name != "Atelectasis":  # lobar collapse may pull the heart and diaphragm, uncovering lung
            assert diff.min() > -0.1 * diff.max()  # no darkening beyond the edge-enhancement halo
        assert (diff > 3).mean() < 0.2  # confined to part of a lung


# --- label model ----------------------------------------------------------------------------------------


def test_default_prevalence_matches_the_config() -> None:
    labels = _labels(DEFAULT_CONFIG)
    for name, p in target_prevalence(DEFAULT_CONFIG).items():
        sd = np.sqrt(p * (1 - p) / len(labels))
        assert abs(_share(labels, name) - p) < 4.5 * sd, name
    no_finding = np.mean([lab == () for lab in labels])
    assert 0.51 < no_finding < 0.61  # ChestX-ray14: about 54 % "No Finding"


def test_configured_co_occurrence_shows_up() -> None:
    def lift(labels: list[tuple[str, ...]], a: str, b: str) -> float:
        return _share(labels, a, b) / (_share(labels, a) * _share(labels, b))

    labels = _labels(DEFAULT_CONFIG, n=8000)
    assert lift(labels, "Atelectasis", "Effusion") > 1.6
    assert lift(labels, "Cardiomegaly", "Effusion") > 1.6
    assert lift(labels, "Mass", "Nodule") > 1.5
    independent = _labels(PhantomConfig(lift=(), enrich=2.0), n=8000)
    assert 0.6 < lift(independent, "Atelectasis", "Effusion") < 1.4


def test_demo_config_shows_findings_in_about_half_the_images() -> None:
    share = 1.0 - np.mean([lab == () for lab in _labels(DEMO_CONFIG)])
    assert 0.45 < share < 0.55
    assert target_prevalence(DEMO_CONFIG)["Effusion"] > target_prevalence(DEFAULT_CONFIG)["Effusion"]
