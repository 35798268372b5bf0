"""Each run kind's checks of what its config names: the sets, models and names must exist or be free.

A kind's `check` in app.domain.run_kinds.KINDS is the function here named after the kind:
`check(session, config)` raises InvalidConfig naming the field at fault. A config's own validators check
its values; these check them against the database and the model store, which is why they live apart
from the models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain import extractors
from app.domain.errors import Invalid
from app.persistence import patient_records
from app.persistence.model_store import StoredModel, find_model
from app.persistence.models import ImageSet
from app.persistence.repositories import image_sets
from app.persistence.repositories import runs as runs_repo

if TYPE_CHECKING:
    from app.domain.dicomweb_query import ImportDicomwebConfig
    from app.domain.run_kinds import (
        EvaluationConfig,
        ImportSegalConfig,
        LcoRunConfig,
        MemorisationConfig,
        SampleConfig,
        SynthVsRealConfig,
        TrainClassifierConfig,
        TrainGanConfig,
    )


class InvalidConfig(Invalid):
    """A run's config broke its kind's rules; `fields` maps each bad field to its message."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("Please correct: " + "; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


def _new_model(session: Session, name: str) -> None:
    if find_model(get_settings().models_dir, name, kind=None) is not None or runs_repo.claimed(
        session, "model_name", name
    ):
        raise InvalidConfig({"model_name": "a model of this name exists or is being made"})


def _new_set(session: Session, name: str) -> None:
    """A run's new image set must not take a name in use or claimed by a waiting or running run."""
    name = name.strip()
    if not name:  # blank: the task names the set after its run
        return
    if image_sets.by_name(session, name) is not None or runs_repo.claimed(session, "set_name", name):
        raise InvalidConfig({"set_name": "an image set of this name exists or is being made"})


def lco(session: Session, config: LcoRunConfig) -> None:
    """The generator and classifiers exist, the judge is independent, the targets are readable."""
    models_dir = get_settings().models_dir
    if find_model(models_dir, config.model) is None:
        raise InvalidConfig({"model": "no such generator"})
    classifier = find_model(models_dir, config.classifier, kind="classifier")
    if classifier is None:
        raise InvalidConfig({"classifier": "no such classifier"})
    if config.judge:
        _judge(classifier, find_model(models_dir, config.judge, kind="classifier"))
    if config.target_mode == "empirical":
        labelled = session.get(ImageSet, config.label_set_id)
        # A finding the set never annotated would become an "absent" target in every row.
        if labelled is None or set(classifier.manifest["findings"]) - set(labelled.label_schema):
            raise InvalidConfig(
                {"label_set_id": "choose a set labelled with all of the classifier's findings"}
            )
    if config.target_mode == "explicit":
        unknown = {f for c in config.combinations() for f in c} - set(classifier.manifest["findings"])
        if unknown:
            raise InvalidConfig({"combos": f"not findings of the classifier: {', '.join(sorted(unknown))}"})
    _new_set(session, config.set_name)


def _judge(steerer: StoredModel, judge: StoredModel | None) -> None:
    """An LCO judge reads every finding of the steerer, is another network, and learnt from none of the
    steerer's patients where both record them (the run notes when that cannot be verified)."""
    if judge is None:
        raise InvalidConfig({"judge": "no such classifier"})
    missing = set(steerer.manifest["findings"]) - set(judge.manifest["findings"])
    if missing:
        raise InvalidConfig({"judge": f"it does not read {', '.join(sorted(missing))}"})
    if judge.manifest.get("sha256") == steerer.manifest.get("sha256"):
        raise InvalidConfig({"judge": "it is the steering classifier under another name"})
    shared, _ = patient_records.independence(steerer, judge)
    if shared:
        why = f"it learnt from {shared:,} of the steering classifier's patients; choose one trained on others"
        raise InvalidConfig({"judge": why})


def train_gan(session: Session, config: TrainGanConfig) -> None:
    """The set exists, the Fréchet-distance extractor and held-out classifier are usable, the name free."""
    models_dir = get_settings().models_dir
    if session.get(ImageSet, config.image_set_id) is None:
        raise InvalidConfig({"image_set_id": "no such image set"})
    fd_extractor = config.fd_classifier
    if fd_extractor and find_model(models_dir, fd_extractor, kind="classifier") is None:
        raise InvalidConfig({"fd_classifier": "no such classifier"})
    if config.fd_inception and extractors.registered(models_dir) is None:
        raise InvalidConfig({"fd_inception": extractors.MISSING_HELP})
    if config.exclude_test_of:
        held = find_model(models_dir, config.exclude_test_of, kind="classifier")
        if held is None or patient_records.classifier_test_patients(held) is None:
            raise InvalidConfig(
                {"exclude_test_of": "this classifier records no test patients (trained before records)"}
            )
    _new_model(session, config.model_name)


def sample(session: Session, config: SampleConfig) -> None:
    """The generator exists and the new set's name is free."""
    if find_model(get_settings().models_dir, config.model) is None:
        raise InvalidConfig({"model": "no such model"})
    _new_set(session, config.set_name)


def import_segal(session: Session, config: ImportSegalConfig) -> None:
    """The new model's name is free (the file is checked by the worker that reads it)."""
    _new_model(session, config.model_name)


def train_classifier(session: Session, config: TrainClassifierConfig) -> None:
    """The set has labels and the new model's name is free."""
    image_set = session.get(ImageSet, config.image_set_id)
    if image_set is None or not image_set.label_schema:
        raise InvalidConfig({"image_set_id": "choose a set with labels (a label schema)"})
    _new_model(session, config.model_name)


def evaluation(session: Session, config: EvaluationConfig) -> None:
    """A real and a synthetic set, and the feature extractor the config names."""
    models_dir = get_settings().models_dir
    real = session.get(ImageSet, config.real_set_id)
    synthetic = session.get(ImageSet, config.synthetic_set_id)
    if real is None or real.kind != "real":
        raise InvalidConfig({"real_set_id": "choose a real set"})
    if synthetic is None or synthetic.kind != "synthetic":
        raise InvalidConfig({"synthetic_set_id": "choose a synthetic set"})
    if config.extractor == "inception" and extractors.registered(models_dir) is None:
        raise InvalidConfig({"extractor": extractors.MISSING_HELP})
    if config.extractor == "domain" and (
        not config.classifier or find_model(models_dir, config.classifier, kind="classifier") is None
    ):
        raise InvalidConfig({"classifier": "choose a classifier: the domain extractor uses its features"})


def synth_vs_real(session: Session, config: SynthVsRealConfig) -> None:
    """A labelled real set, and a synthetic archive labelled with every finding of it."""
    real, archive = session.get(ImageSet, config.real_set_id), session.get(ImageSet, config.archive_set_id)
    if real is None or real.kind != "real" or not real.label_schema:
        raise InvalidConfig({"real_set_id": "choose a real set with labels"})
    if archive is None or archive.kind != "synthetic" or set(real.label_schema) - set(archive.label_schema):
        # An unannotated finding would be learnt as "never present" and score as if it were a result.
        raise InvalidConfig(
            {"archive_set_id": "choose a synthetic set labelled with all of the real set's findings"}
        )


def import_dicomweb(session: Session, config: ImportDicomwebConfig) -> None:
    """A PACS is configured and the new set's name is free."""
    if not get_settings().dicomweb_url:
        raise InvalidConfig({"set_name": "no PACS is configured: set DICOMWEB_URL on the server"})
    _new_set(session, config.set_name)


def memorisation(session: Session, config: MemorisationConfig) -> None:
    """A synthetic set, real training and held-out sets (not the same), and the classifier."""
    synthetic = session.get(ImageSet, config.synthetic_set_id)
    if synthetic is None or synthetic.kind != "synthetic":
        raise InvalidConfig({"synthetic_set_id": "choose a synthetic set"})
    for field, set_id in (
        ("training_set_id", config.training_set_id),
        ("holdout_set_id", config.holdout_set_id),
    ):
        chosen = session.get(ImageSet, set_id) if set_id is not None else None
        if set_id is not None and (chosen is None or chosen.kind != "real"):
            raise InvalidConfig({field: "choose a real set"})
    if config.holdout_set_id == config.training_set_id:
        raise InvalidConfig({"holdout_set_id": "the held-out set must not be the training set"})
    if find_model(get_settings().models_dir, config.classifier, kind="classifier") is None:
        raise InvalidConfig({"classifier": "no such classifier"})
