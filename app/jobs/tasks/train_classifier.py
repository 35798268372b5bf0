"""`train_classifier`: a thin adapter from a run to app.ml.classifier (one sigmoid per finding)."""

from __future__ import annotations

import io
import shutil
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image as PILImage
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain.run_kinds import TrainClassifierConfig
from app.jobs.tasks.patients import set_patients
from app.jobs.tasks.runner import Aborted, RunContext, log
from app.persistence.blobs import BlobStore
from app.persistence.models import ImageSet
from app.persistence.patient_records import half_of, write_patients
from app.persistence.repositories import image_sets

if TYPE_CHECKING:
    from app.ml.classifier.train import EpochProgress


def load_labelled(session: Session, set_id: int, size: int, findings: list[str] | None = None):
    """(N, size, size) uint8 films, (N, F) 0/1 labels, patient ids and given splits of an image set."""
    store = BlobStore(get_settings().images_dir)
    image_set = session.get(ImageSet, set_id)
    if image_set is None:
        raise ValueError(f"image set {set_id} no longer exists")
    findings = findings or list(image_set.label_schema)
    rows = image_sets.image_columns(session, set_id, "sha256", "labels", "patient_id", "split")
    images = np.zeros((len(rows), size, size), dtype=np.uint8)
    for i, row in enumerate(rows):
        with PILImage.open(io.BytesIO(store.get(row.sha256))) as img:
            grey = img.convert("L")
            if grey.size != (size, size):  # square films; resized the way Classifier.prepare resizes
                method = PILImage.Resampling.BOX if grey.size[0] > size else PILImage.Resampling.BILINEAR
                grey = grey.resize((size, size), method)
            images[i] = np.asarray(grey)
    labels = np.array([[f in (row.labels or []) for f in findings] for row in rows], dtype=np.float32)
    return image_set.name, findings, images, labels, [r.patient_id for r in rows], [r.split for r in rows]


def train_classifier_body(ctx: RunContext, session: Session) -> dict[str, Any]:
    """Train, evaluate, save the snapshot under the model store."""
    from app.ml.classifier.checkpoints import auroc_json, save_classifier
    from app.ml.classifier.config import ClassifierConfig, ClassifierTrainConfig
    from app.ml.classifier.train import train_classifier
    from app.ml.devices import best_device

    cfg: TrainClassifierConfig = ctx.config  # type: ignore[assignment]
    name, findings, images, labels, patients, splits = load_labelled(
        session, cfg.image_set_id, cfg.image_size
    )
    keys = set_patients(session, cfg.image_set_id)[0]  # one patient key per film, in the same order
    session.rollback()  # the read is done; training holds no transaction open
    if cfg.patients != "all":
        keep = np.array([half_of(k) == cfg.patients for k in keys], dtype=bool)
        images, labels = images[keep], labels[keep]
        patients, splits, keys = (
            [v for v, k in zip(vs, keep, strict=True) if k] for vs in (patients, splits, keys)
        )
        log.info("the %s of the patients: %d of %d films", cfg.patients, int(keep.sum()), len(keep))
    log.info(
        "training a %s classifier on '%s': %d images, findings %s", cfg.arch, name, len(images), findings
    )
    net = ClassifierConfig(
        findings=tuple(findings), arch=cfg.arch, image_size=cfg.image_size, width=cfg.width
    )
    tcfg = ClassifierTrainConfig(
        epochs=cfg.epochs, batch=cfg.batch, lr=cfg.lr, class_weighting=cfg.class_weighting, seed=cfg.seed
    )
    last_epoch = [0]

    def progress(p: EpochProgress) -> None:
        ctx.report(p)
        if p.epoch != last_epoch[0]:
            last_epoch[0] = p.epoch
            log.info("epoch %d / %d", p.epoch, p.epochs)

    result = train_classifier(
        net,
        tcfg,
        images,
        labels,
        patients=patients,
        splits=splits,
        run_dir=ctx.run_dir,
        progress_fn=progress,
        abort_fn=ctx.should_abort,
        backbone_weights=None if not cfg.backbone_weights else _weights(cfg.backbone_weights),
        device=best_device(),
    )
    if result.aborted:
        raise Aborted()
    val, test = auroc_json(result.val), auroc_json(result.test)
    log.info("macro AUROC: validation %s, test %s", val["macro"], test["macro"])
    models_dir = get_settings().models_dir
    staging = models_dir / f".{cfg.model_name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    manifest = {
        "name": cfg.model_name,
        "source": f"run {ctx.run_id}",
        "data": name,
        "train_config": tcfg.to_dict(),
    }
    manifest |= {
        "auroc_val": val,
        "auroc_test": test,
        "split_sizes": {k: len(v) for k, v in result.splits.items()},
        # How patients were split, so synth_vs_real can test on exactly this classifier's test patients.
        "split": {
            "image_set_id": cfg.image_set_id,
            "seed": tcfg.seed,
            "val_fraction": tcfg.val_fraction,
            "test_fraction": tcfg.test_fraction,
            "patients": cfg.patients,
        },
    }
    staging.mkdir(parents=True)
    # Whom it learnt from (train and validation) and was tested on: for LCO judges and held-out GANs.
    learnt = [keys[i] for role in ("train", "val") for i in result.splits[role]]
    manifest["patients"] = write_patients(
        staging,
        learnt=learnt,
        test=[keys[i] for i in result.splits["test"]],
        image_set_id=cfg.image_set_id,
        half=cfg.patients,
    )
    save_classifier(result.model, staging, thresholds=result.thresholds, manifest=manifest)
    ctx.check_still_mine()
    staging.rename(models_dir / cfg.model_name)
    return {"model": cfg.model_name, "auroc_test_macro": test["macro"], "auroc_val_macro": val["macro"]}


def _weights(path: str):
    from pathlib import Path

    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{p} is not a file on this worker")
    return p
