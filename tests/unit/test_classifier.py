"""The classifier: AUROC against scikit-learn and a direct DeLong, thresholds, the patient split,
augmentations that never mirror, a tiny end-to-end training and a snapshot round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from app.ml.classifier.checkpoints import load_classifier, save_classifier, thresholds_of
from app.ml.classifier.config import ClassifierConfig, ClassifierTrainConfig
from app.ml.classifier.metrics import auroc, youden_thresholds
from app.ml.classifier.split import split_by_patient
from app.ml.classifier.train import augment, predict, train_classifier


def delong_direct(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """AUROC and its DeLong variance from the O(m n) kernel, as in DeLong et al. (1988)."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_sklearn_and_a_direct_delong(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = np.round(y * 0.7 + rng.normal(size=300), 1)  # rounding makes ties
    a = auroc(y, s)
    assert a.value == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    value, var = delong_direct(y, s)
    assert a.value == pytest.approx(value, abs=1e-12)
    assert (a.high - a.low) / 2 == pytest.approx(1.959964 * np.sqrt(var), rel=1e-6)
    assert auroc(np.zeros(5), s[:5]).value is None


def test_youden_threshold_separates_a_separable_finding():
    y = np.array([[0], [0], [0], [1], [1]])
    p = np.array([[0.1], [0.2], [0.3], [0.7], [0.9]])
    t = youden_thresholds(y, p)[0]
    assert 0.3 < t <= 0.7


def test_split_keeps_patients_together_and_honours_a_given_test_list():
    patients = [f"p{i // 3}" for i in range(60)]
    given = ["test" if i < 9 else "train" for i in range(60)]
    parts = split_by_patient(60, patients=patients, given=given, val_fraction=0.2, test_fraction=0.2, seed=0)
    assert sorted(parts["test"].tolist()) == list(range(9))
    owner = {}
    for name, idx in parts.items():
        for i in idx:
            assert owner.setdefault(patients[i], name) == name  # one split per patient
    assert sum(len(v) for v in parts.values()) == 60 and len(parts["val"]) >= 3


def test_augmentation_never_mirrors_the_film():
    x = torch.zeros(64, 1, 32, 32)
    x[..., :16] = 1.0  # bright left half
    out = augment(
        x, ClassifierTrainConfig(rotate_deg=5, scale=0.05, brightness=0.1), torch.Generator().manual_seed(0)
    )
    assert (out[..., :16].mean(dim=(1, 2, 3)) > out[..., 16:].mean(dim=(1, 2, 3)) + 0.5).all()


def squares(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise films; finding A adds a bright square top-left, B one bottom-right."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, (n, 2))
    images = rng.integers(40, 120, (n, 32, 32)).astype(np.uint8)
    images[labels[:, 0] == 1, 4:12, 4:12] = 230
    images[labels[:, 1] == 1, 20:28, 20:28] = 230
    return images, labels


def test_tiny_training_learns_and_the_snapshot_round_trips(tmp_path):
    images, labels = squares(240, 0)
    cfg = ClassifierConfig(findings=("A", "B"), arch="small", image_size=32, width=8)
    tcfg = ClassifierTrainConfig(epochs=4, batch=32, lr=3e-3, seed=0)
    seen = []
    res = train_classifier(cfg, tcfg, images, labels, run_dir=tmp_path, progress_fn=seen.append)
    assert all(a.value > 0.95 for a in res.test.values()), res.test
    assert seen[-1].fraction == 1.0 and (seen[-1].epoch, seen[-1].note) == (4, "epoch 4 / 4")
    assert len(res.history) == 4 and (tmp_path / "metrics.jsonl").exists()
    folder = save_classifier(
        res.model, tmp_path / "snap", thresholds=res.thresholds, manifest={"data": "squares"}
    )
    model, manifest = load_classifier(folder)
    x = torch.from_numpy(images[:16]).float().div(255).unsqueeze(1)
    np.testing.assert_allclose(predict(model, x), predict(res.model, x), atol=1e-6)
    np.testing.assert_allclose(thresholds_of(manifest), res.thresholds)
    (folder / "classifier.safetensors").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        load_classifier(folder)


def test_synthetic_train_real_test_compares_three_sources_on_the_same_real_test_films():
    from app.ml.classifier.synth_vs_real import synth_vs_real

    r_img, r_lab = squares(160, 1)
    s_img, s_lab = squares(120, 2)
    s_img[:, 4:12, 4:12] = 100  # the "synthetic" films never show finding A: it cannot learn A from them
    s_lab[:, 0] = 0
    cfg = ClassifierConfig(findings=("A", "B"), arch="small", image_size=32, width=8)
    tcfg = ClassifierTrainConfig(epochs=4, batch=32, lr=3e-3, seed=0)
    out = synth_vs_real(cfg, tcfg, (r_img, r_lab, None, None), (s_img, s_lab))
    by = {row["finding"]: row for row in out["table"]}
    assert by["B"]["synthetic"]["auroc"] > 0.9 and by["B"]["real"]["auroc"] > 0.9
    assert by["A"]["real"]["auroc"] > 0.9 and by["A"]["synthetic"]["auroc"] < 0.8
    assert out["sizes"]["synthetic_train"] == 120


def test_perfect_separation_still_gets_an_interval():
    a = auroc(np.array([0, 0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.8, 0.9]))
    assert a.value == 1.0 and a.high == 1.0 and a.low < 0.9  # five films cannot prove a perfect test


def test_a_patient_with_one_film_on_the_test_list_is_a_test_patient():
    parts = split_by_patient(
        4,
        patients=["a", "a", "b", "c"],
        given=["test", None, None, None],
        val_fraction=0.3,
        test_fraction=0.3,
        seed=0,
    )
    assert sorted(parts["test"].tolist()) == [0, 1]


def test_densenet_weights_in_torchvision_s_old_layout_load_and_partial_files_are_refused():
    import re

    from torchvision.models import densenet121

    from app.ml.classifier.networks import load_backbone

    source = densenet121(weights=None).state_dict()
    old = {
        "module." + re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v + 0.5
        for k, v in source.items()
        if "num_batches" not in k
    }
    net = densenet121(weights=None)
    load_backbone(net, old)
    key = "features.denseblock1.denselayer1.norm1.weight"
    assert torch.equal(net.state_dict()[key], source[key] + 0.5)
    with pytest.raises(ValueError, match="unset"):
        load_backbone(densenet121(weights=None), {"features.conv0.weight": source["features.conv0.weight"]})
