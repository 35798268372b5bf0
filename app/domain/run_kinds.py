"""The kinds of run an admin can start: each is a config model, a queue and a task of the same name.

Adding a kind means one config model, here or in a module of its own (its fields, titles and defaults
are the New-run form), one entry in KINDS, its check of what the config names (the function of
app.domain.run_checks named after the kind), and one task function in app/jobs/tasks registered under
the kind's name. The web process only ever sees this module; the tasks and torch live in the worker.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from app.domain import run_checks as checks
from app.domain.dicomweb_query import ImportDicomwebConfig
from app.domain.ids import DbId
from app.domain.run_fields import (
    NAME_RE,
    IntList,
    OptionalId,
    OptionalInt,
    RunConfig,
    blank_is_none,
    numeric,
)
from app.gan_defaults import DEFAULT_PRESET, EMA_DECAY, SEGAL_BATCH_SIZES, Preset


class TrainGanConfig(RunConfig):
    """Train a progressively growing GAN (Karras et al. 2018) on an image set."""

    image_set_id: DbId = Field(title="Image set", json_schema_extra={"choices": "image_sets"})
    model_name: str = Field(
        title="Model name", pattern=NAME_RE, description="The trained generator is stored under this name."
    )
    preset: Preset = Field(
        DEFAULT_PRESET,
        title="Training preset",
        description="engine: Karras et al.'s PGGAN settings, bf16 on CUDA. authors: as Segal et al.'s code: "
        "float32, no activation after fromRGB, minibatch-stddev over each GPU's whole batch, Adam eps 1e-7, "
        "3-channel images in [0, 1], and the batch below on each of 4 GPUs whatever the GPUs at hand.",
    )
    resolution: Annotated[Literal[8, 16, 32, 64, 128, 256, 512, 1024], BeforeValidator(numeric)] = Field(
        64, title="Final resolution (px)", description="Grows from 4 px to this."
    )
    z_dim: int = Field(128, ge=8, le=512, title="Latent size")
    channels: IntList = Field(
        (128, 128, 128, 64, 32, 16, 16, 16, 16),
        title="Feature maps per stage",
        description="From 4 px up, comma-separated; the authors used 512 ×4, then halving.",
    )
    batch_sizes: IntList = Field(
        SEGAL_BATCH_SIZES,
        title="Batch per stage",
        description="Per GPU, from 4 px up (the authors' preset: per GPU of their 4, so 4 × this per step).",
    )
    fade_images: int = Field(20_000, ge=0, title="Images per fade-in")
    stable_images: int = Field(20_000, ge=1, title="Images per stable phase")
    final_stable_images: int = Field(40_000, ge=1, title="Images at the final resolution")
    ema_decay: float = Field(
        EMA_DECAY,
        gt=0,
        lt=1,
        title="EMA decay per step",
        description="The authors' 0.999; a short run may want 0.99, or the EMA lags the new blocks.",
    )
    seed: int = Field(0, ge=0, title="Seed")
    metrics_every: int = Field(2_000, ge=1, title="Images between metrics lines")
    grid_every: int = Field(10_000, ge=1, title="Images between sample grids")
    checkpoint_every: int = Field(10_000, ge=1, title="Images between resume checkpoints")
    fd_classifier: Annotated[str | None, BeforeValidator(blank_is_none)] = Field(
        None,
        pattern=NAME_RE,
        title="Fréchet distance: feature extractor (classifier)",
        description="Optional: measures the domain Fréchet distance to the training films at every "
        "checkpoint and at the end, beside the real-versus-real baseline. Blank: off.",
        json_schema_extra={"choices": "classifiers"},
    )
    fd_inception: bool = Field(
        False,
        title="Fréchet distance: use the registered Inception (FID)",
        description="Instead of a classifier; needs the weights registered under Feature extractors.",
    )
    fd_images: int = Field(256, ge=16, le=5_000, title="Fréchet distance: images per measurement")
    # Patients a later synth_vs_real tests on must not shape the generator; the run records whom it saw.
    exclude_test_of: Annotated[str | None, BeforeValidator(blank_is_none)] = Field(
        None,
        pattern=NAME_RE,
        title="Hold out the test patients of (classifier)",
        description="Optional: train without the patients this classifier was tested on: the real test "
        "patients of synth_vs_real for archives it labels. Blank: every patient of the set.",
        json_schema_extra={"choices": "classifiers"},
    )
    exclude_split_seed: OptionalInt = Field(
        None,
        ge=0,
        title="Hold out the test patients of the split with this seed",
        description="Optional, instead: synth_vs_real's own patient split of this set (its seed).",
    )

    @model_validator(mode="after")
    def _one_exclusion(self) -> TrainGanConfig:
        if self.exclude_test_of and self.exclude_split_seed is not None:
            raise ValueError("hold out a classifier's test patients or a split's, not both")
        return self

    @model_validator(mode="after")
    def _one_extractor(self) -> TrainGanConfig:
        if self.fd_classifier and self.fd_inception:
            raise ValueError("measure the Fréchet distance with a classifier or with Inception, not both")
        return self

    @model_validator(mode="after")
    def _stages_covered(self) -> TrainGanConfig:
        stages = self.resolution.bit_length() - 2  # 4 px is stage 1, 8 px stage 2, ...
        for name in ("channels", "batch_sizes"):
            values = getattr(self, name)
            if len(values) < stages:
                raise ValueError(f"{name.replace('_', ' ')} needs {stages} values for {self.resolution} px")
            if any(v < 1 for v in values):
                raise ValueError(f"{name.replace('_', ' ')} must be positive")
        return self


class SampleConfig(RunConfig):
    """Sample a generator into a new synthetic image set."""

    model: str = Field(title="Model", pattern=NAME_RE, json_schema_extra={"choices": "models"})
    n: int = Field(200, ge=1, le=100_000, title="Images")
    # Drawn afresh for each form, so two runs make different images unless asked; recorded with the run.
    seed: int = Field(
        default_factory=lambda: secrets.randbelow(2**31),
        ge=0,
        title="Seed",
        description="Random for each new run; the same seed and model make the same images.",
    )
    size: OptionalInt = Field(
        None, ge=32, le=2048, title="Rendered size (px)", description="Blank: the model's resolution."
    )
    batch: int = Field(16, ge=1, le=256, title="Batch")
    set_name: str = Field(
        "", max_length=200, title="Image set name", description="Blank: named after the model, seed and run."
    )


class ImportSegalConfig(RunConfig):
    """Convert the published Segal et al. generator (Final_Full_Model.pth) found on the worker."""

    path: str = Field(
        min_length=1, max_length=1000, title="File on the worker", description="Read with weights_only."
    )
    model_name: str = Field("segal-2021", pattern=NAME_RE, title="Model name")


class ClassifierTraining(RunConfig):
    """Network and optimiser fields shared by the kinds that train classifiers."""

    arch: Literal["small", "densenet121"] = Field(
        "small", title="Network", description="DenseNet-121 as in CheXNet, or a small CNN (phantoms, CPU)."
    )
    image_size: Annotated[Literal[32, 64, 128, 224, 256, 512], BeforeValidator(numeric)] = Field(
        64, title="Input size (px)"
    )
    width: int = Field(16, ge=4, le=128, title="Small CNN width")
    epochs: int = Field(10, ge=1, le=500, title="Epochs")
    batch: int = Field(32, ge=1, le=1024, title="Batch")
    lr: float = Field(1e-3, gt=0, lt=1, title="Learning rate")
    seed: int = Field(0, ge=0, title="Seed")


class TrainClassifierConfig(ClassifierTraining):
    """Train a multi-label classifier (one sigmoid per finding of the set's label schema) on an image set."""

    image_set_id: DbId = Field(title="Labelled image set", json_schema_extra={"choices": "image_sets"})
    model_name: str = Field(title="Classifier name", pattern=NAME_RE)
    class_weighting: bool = Field(False, title="Weight rare findings up")
    patients: Literal["all", "first half", "second half"] = Field(
        "all",
        title="Patients",
        description="A half (by a hash of the patient id) leaves the other half unseen: steer LCO with a "
        "classifier of one half and judge it with one of the other.",
    )
    backbone_weights: str = Field(
        "",
        max_length=1000,
        title="DenseNet weights file on the worker",
        description="Optional: e.g. ImageNet weights (a state_dict, read with weights_only). Blank: random.",
    )

    @model_validator(mode="after")
    def _weights_need_densenet(self) -> TrainClassifierConfig:
        if self.backbone_weights.strip() and self.arch != "densenet121":
            raise ValueError("a weights file fits the DenseNet-121 network only")
        return self


class LcoRunConfig(RunConfig):
    """Build a labelled archive: latent class optimisation steers a generator until a classifier sees
    each target's findings (Segal et al. 2021)."""

    model: str = Field(title="Generator", pattern=NAME_RE, json_schema_extra={"choices": "models"})
    classifier: str = Field(
        title="Classifier (steers)", pattern=NAME_RE, json_schema_extra={"choices": "classifiers"}
    )
    # LCO attacks the classifier it steers by; only another one can say whether the findings are there.
    judge: Annotated[str | None, BeforeValidator(blank_is_none)] = Field(
        None,
        pattern=NAME_RE,
        title="Judge (an independent classifier)",
        description="Decides success on each stored film; must be trained on other patients than the "
        "steering classifier. Blank: the steering classifier judges itself.",
        json_schema_extra={"choices": "classifiers"},
    )
    n: int = Field(100, ge=1, le=100_000, title="Images")
    target_mode: Literal["empirical", "balanced", "explicit"] = Field(
        "empirical",
        title="Targets",
        description="empirical: label rows drawn from a labelled set (real co-occurrence); balanced: each "
        "finding alone in turn; explicit: the combinations below.",
    )
    label_set_id: OptionalId = Field(
        None, title="Labelled set (empirical)", json_schema_extra={"choices": "image_sets"}
    )
    combos: str = Field(
        "",
        max_length=2000,
        title="Combinations (explicit)",
        description="Separated by ';', findings joined by '+', e.g. 'Cardiomegaly+Effusion; Nodule'. "
        "An empty combination means no finding.",
    )
    steps: int = Field(200, ge=0, le=10_000, title="Step limit")
    lr: float = Field(0.05, gt=0, le=10, title="Adam learning rate on z")
    margin: float = Field(
        0.5,
        ge=0,
        le=5,
        title="Margin (logits)",
        description="How far past its threshold each finding must be.",
    )
    restarts: int = Field(2, ge=0, le=20, title="Restarts for failures")
    screen: int = Field(
        1,
        ge=1,
        le=256,
        title="Screened latents per start",
        description="Each attempt starts from the best of this many random latents; helps rare combinations.",
    )
    batch: int = Field(16, ge=1, le=256, title="Batch")
    seed: int = Field(0, ge=0, title="Seed")
    size: OptionalInt = Field(
        None, ge=32, le=2048, title="Rendered size (px)", description="Blank: the model's."
    )
    set_name: str = Field(
        "", max_length=200, title="Image set name", description="Blank: named after the run."
    )

    @model_validator(mode="after")
    def _mode_inputs(self) -> LcoRunConfig:
        if self.target_mode == "empirical" and self.label_set_id is None:
            raise ValueError("empirical targets need a labelled set")
        if self.target_mode == "explicit" and not self.combos.strip():
            raise ValueError("explicit targets need at least one combination")
        if self.judge is not None and self.judge == self.classifier:
            raise ValueError("the judge must be another classifier than the one that steers")
        return self

    def combinations(self) -> list[list[str]]:
        """The explicit combinations as lists of finding names."""
        return [[f.strip() for f in c.split("+") if f.strip()] for c in self.combos.split(";")]


class SynthVsRealConfig(ClassifierTraining):
    """Train on synthetic, test on real: one classifier each on real, synthetic and real+synthetic films,
    validated and tested on the same real patients; AUROC per finding side by side."""

    real_set_id: DbId = Field(title="Real labelled set", json_schema_extra={"choices": "image_sets"})
    archive_set_id: DbId = Field(
        title="Synthetic labelled set (archive)", json_schema_extra={"choices": "image_sets"}
    )


class EvaluationConfig(RunConfig):
    """Fréchet distance of a synthetic set to a real set, in the features of the project's own classifier
    (no outside weights) or of the registered Inception-v3 (FID), beside a real-versus-real baseline at the
    same n; optionally FID∞, KID and precision/recall."""

    real_set_id: DbId = Field(title="Real set", json_schema_extra={"choices": "image_sets"})
    synthetic_set_id: DbId = Field(title="Synthetic set", json_schema_extra={"choices": "image_sets"})
    extractor: Literal["domain", "inception"] = Field(
        "domain",
        title="Feature extractor",
        description="domain: the classifier below (no outside weights); inception: FID with the Inception-v3 "
        "weights an admin registered (weights-inception-2015-12-05-6726825d.pth from torch-fidelity's "
        "GitHub releases, see /extractors).",
    )
    classifier: Annotated[str | None, BeforeValidator(blank_is_none)] = Field(
        None,
        pattern=NAME_RE,
        title="Classifier (domain extractor)",
        json_schema_extra={"choices": "classifiers"},
    )
    max_images: int = Field(
        2000,
        ge=10,
        le=200_000,
        title="Images per set at most",
        description="Synthetic images; the real set gives up to twice as many, so that its two baseline "
        "halves each match the synthetic n.",
    )
    extrapolate: bool = Field(
        False,
        title="Also FID∞ (Chong & Forsyth 2020)",
        description="Needs at least twice as many images per set as feature dimensions.",
    )
    kid: bool = Field(False, title="Also KID (Bińkowski et al. 2018)")
    kid_subsets: int = Field(100, ge=1, le=1000, title="KID subsets")
    kid_subset_size: int = Field(
        1000,
        ge=2,
        le=10_000,
        title="KID subset size",
        description="At most half the smaller set, so that subsets differ and the std means something.",
    )
    precision_recall: bool = Field(False, title="Also precision and recall (Kynkäänniemi et al. 2019, k = 3)")
    seed: int = Field(0, ge=0, title="Seed")


class MemorisationConfig(RunConfig):
    """Memorisation audit: is any generate a near-copy of a film the generator was trained on? Thresholds are
    calibrated on real held-out films (their nearest training film is as close as a new patient gets)."""

    synthetic_set_id: DbId = Field(title="Synthetic set", json_schema_extra={"choices": "image_sets"})
    training_set_id: DbId = Field(
        title="Training set (real)",
        description="The films the generator was trained on.",
        json_schema_extra={"choices": "image_sets"},
    )
    holdout_set_id: OptionalId = Field(
        None,
        title="Held-out real set (optional)",
        description="Real films the generator never saw. Blank: a fifth of the training set's patients "
        "are held out for the calibration.",
        json_schema_extra={"choices": "image_sets"},
    )
    classifier: str = Field(
        title="Feature extractor (classifier)", pattern=NAME_RE, json_schema_extra={"choices": "classifiers"}
    )
    quantile: float = Field(
        0.01,
        gt=0,
        le=0.2,
        title="Near-copy quantile",
        description="Flag a generate nearer than all but this share of held-out films, in features and SSIM.",
    )
    ssim_size: int = Field(64, ge=16, le=256, title="SSIM resolution (px)")
    # Caps the generates and the calibration, never the search: a capped search misses copies of the rest.
    max_images: int = Field(
        5000,
        ge=10,
        le=200_000,
        title="Generates and held-out films at most",
        description="A seeded subset of each when larger. Every training film is searched, whatever this is.",
    )
    seed: int = Field(0, ge=0, title="Seed")


class Kind(BaseModel):
    """A kind of run: what it is called, how it is configured and which worker queue takes it."""

    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    config: type[RunConfig]
    queue: Literal["gpu", "cpu"]

    @property
    def check(self) -> Callable[[Session, Any], None]:
        """What the kind's config names must exist or be free: the function of run_checks named after it."""
        return getattr(checks, self.name)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(name="train_gan", title="Train a GAN", config=TrainGanConfig, queue="gpu"),
        Kind(name="sample", title="Sample a model", config=SampleConfig, queue="gpu"),
        Kind(
            name="import_segal", title="Import the published generator", config=ImportSegalConfig, queue="cpu"
        ),
        Kind(name="train_classifier", title="Train a classifier", config=TrainClassifierConfig, queue="gpu"),
        Kind(name="lco", title="Build a labelled archive (LCO)", config=LcoRunConfig, queue="gpu"),
        Kind(name="synth_vs_real", title="Synthetic-train, real-test", config=SynthVsRealConfig, queue="gpu"),
        Kind(
            name="evaluation",
            title="Evaluate a set (domain Fréchet distance)",
            config=EvaluationConfig,
            queue="gpu",
        ),
        Kind(name="memorisation", title="Memorisation audit", config=MemorisationConfig, queue="gpu"),
        Kind(
            name="import_dicomweb",
            title="Import films from a PACS (DICOMweb)",
            config=ImportDicomwebConfig,
            queue="cpu",
        ),
    )
}
