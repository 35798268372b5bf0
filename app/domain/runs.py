"""Runs: admins start, cancel and retry them; workers claim them, report progress and finish them.

The route that starts or retries a run defers its job in the same transaction (app.jobs.queue), so a
run row and its job become visible together at commit, or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain import audit, extractors
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.run_kinds import (
    KINDS,
    AuditConfig,
    EvaluateConfig,
    ImportDicomwebConfig,
    ImportSegalConfig,
    LcoRunConfig,
    RunConfig,
    SampleConfig,
    SynthVsRealConfig,
    TrainClassifierConfig,
    TrainGanConfig,
)
from app.persistence import patient_records
from app.persistence.models import FINISHED, ImageSet, Run
from app.persistence.repositories import runs as repo
from app.persistence.snapshots import Snapshot, find_snapshot

RETRYABLE = frozenset({"failed", "cancelled", "stalled"})


class InvalidConfig(Invalid):
    """A run's config broke its kind's rules; `fields` maps each bad field to its message."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("Please correct: " + "; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


def validate_config(session: Session, kind: str, raw: Mapping[str, Any]) -> RunConfig:
    """The kind's config from form or JSON values, with the objects it names checked to exist."""
    if kind not in KINDS:
        raise NotFound(f"No kind of run called '{kind}'.")
    model = KINDS[kind].config
    values = {k: v for k, v in raw.items() if k in model.model_fields}
    try:
        config = model.model_validate(values)
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for err in exc.errors():
            where = str(err["loc"][0]) if err["loc"] else "config"
            fields.setdefault(where, err["msg"].removeprefix("Value error, "))
        raise InvalidConfig(fields) from None
    _check_references(session, config)
    return config


def _claimed(session: Session, key: str, value: str) -> bool:
    """Whether a queued or running run will create something called `value` (config[key])."""
    query = select(Run.id).where(Run.status.in_(("queued", "running")), Run.config[key].astext == value)
    return session.scalar(query.limit(1)) is not None


def _check_new_model(session: Session, name: str) -> None:
    if find_snapshot(get_settings().models_dir, name, kind=None) is not None or _claimed(
        session, "model_name", name
    ):
        raise InvalidConfig({"model_name": "a model of this name exists or is being made"})


def _check_new_set(session: Session, name: str) -> None:
    """A run's new image set must not take a name in use or claimed by a waiting or running run."""
    name = name.strip()
    if not name:  # blank: the task names the set after its run
        return
    if session.scalar(select(ImageSet.id).where(ImageSet.name == name)) is not None or _claimed(
        session, "set_name", name
    ):
        raise InvalidConfig({"set_name": "an image set of this name exists or is being made"})


def _check_lco(session: Session, config: LcoRunConfig) -> None:
    models_dir = get_settings().models_dir
    if find_snapshot(models_dir, config.model) is None:
        raise InvalidConfig({"model": "no such generator"})
    classifier = find_snapshot(models_dir, config.classifier, kind="classifier")
    if classifier is None:
        raise InvalidConfig({"classifier": "no such classifier"})
    if config.judge:
        _check_judge(classifier, find_snapshot(models_dir, config.judge, kind="classifier"))
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
    _check_new_set(session, config.set_name)


def _check_judge(steerer: Snapshot, judge: Snapshot | None) -> None:
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


def _check_references(session: Session, config: RunConfig) -> None:
    models_dir = get_settings().models_dir
    if isinstance(config, TrainGanConfig):
        if session.get(ImageSet, config.image_set_id) is None:
            raise InvalidConfig({"image_set_id": "no such image set"})
        fd_extractor = config.fd_classifier
        if fd_extractor and find_snapshot(models_dir, fd_extractor, kind="classifier") is None:
            raise InvalidConfig({"fd_classifier": "no such classifier"})
        if config.fd_inception and extractors.registered(models_dir) is None:
            raise InvalidConfig({"fd_inception": extractors.MISSING_HELP})
        if config.exclude_test_of:
            held = find_snapshot(models_dir, config.exclude_test_of, kind="classifier")
            if held is None or patient_records.classifier_test_patients(held) is None:
                raise InvalidConfig(
                    {"exclude_test_of": "this classifier records no test patients (trained before records)"}
                )
        _check_new_model(session, config.model_name)
    elif isinstance(config, SampleConfig):
        if find_snapshot(models_dir, config.model) is None:
            raise InvalidConfig({"model": "no such model"})
        _check_new_set(session, config.set_name)
    elif isinstance(config, TrainClassifierConfig):
        image_set = session.get(ImageSet, config.image_set_id)
        if image_set is None or not image_set.label_schema:
            raise InvalidConfig({"image_set_id": "choose a set with labels (a label schema)"})
        _check_new_model(session, config.model_name)
    elif isinstance(config, LcoRunConfig):
        _check_lco(session, config)
    elif isinstance(config, EvaluateConfig):
        real, synthetic = (
            session.get(ImageSet, config.real_set_id),
            session.get(ImageSet, config.synthetic_set_id),
        )
        if real is None or real.kind != "real":
            raise InvalidConfig({"real_set_id": "choose a real set"})
        if synthetic is None or synthetic.kind != "synthetic":
            raise InvalidConfig({"synthetic_set_id": "choose a synthetic set"})
        if config.extractor == "inception" and extractors.registered(models_dir) is None:
            raise InvalidConfig({"extractor": extractors.MISSING_HELP})
        if config.extractor == "domain" and (
            not config.classifier or find_snapshot(models_dir, config.classifier, kind="classifier") is None
        ):
            raise InvalidConfig({"classifier": "choose a classifier: the domain extractor uses its features"})
    elif isinstance(config, SynthVsRealConfig):
        real, archive = (
            session.get(ImageSet, config.real_set_id),
            session.get(ImageSet, config.archive_set_id),
        )
        if real is None or real.kind != "real" or not real.label_schema:
            raise InvalidConfig({"real_set_id": "choose a real set with labels"})
        if (
            archive is None
            or archive.kind != "synthetic"
            or set(real.label_schema) - set(archive.label_schema)
        ):
            # An unannotated finding would be learnt as "never present" and score as if it were a result.
            raise InvalidConfig(
                {"archive_set_id": "choose a synthetic set labelled with all of the real set's findings"}
            )
    elif isinstance(config, ImportSegalConfig):
        _check_new_model(session, config.model_name)
    elif isinstance(config, AuditConfig):
        _check_audit(session, config)
    elif isinstance(config, ImportDicomwebConfig):
        if not get_settings().dicomweb_url:
            raise InvalidConfig({"set_name": "no PACS is configured: set DICOMWEB_URL on the server"})
        _check_new_set(session, config.set_name)


def _check_audit(session: Session, config: AuditConfig) -> None:
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
    if find_snapshot(get_settings().models_dir, config.classifier, kind="classifier") is None:
        raise InvalidConfig({"classifier": "no such classifier"})


def create(
    session: Session, kind: str, raw: Mapping[str, Any], *, actor_id: int, request_key: str | None
) -> tuple[Run, bool]:
    """A new queued run, or the one this form's token already made; the bool says whether it is new."""
    if request_key and len(request_key) > 64:
        raise Invalid("The form's token is malformed; reload the form.")
    if request_key and (earlier := repo.by_request_key(session, request_key)) is not None:
        return earlier, False
    config = validate_config(session, kind, raw)
    run_id = repo.insert_once(
        session,
        {
            "kind": kind,
            "config": config.model_dump(mode="json"),
            "status": "queued",
            "started_by_id": actor_id,
            "request_key": request_key or None,
        },
    )
    if run_id is None:  # the other click's insert committed while ours waited
        earlier = repo.by_request_key(session, request_key or "")
        assert earlier is not None
        return earlier, False
    run = get(session, run_id)
    audit.record(
        session, actor_id=actor_id, action="start", entity="run", entity_id=run_id, new={"kind": kind}
    )
    return run, True


def get(session: Session, run_id: int, *, lock: bool = False) -> Run:
    """The run, or NotFound."""
    run = repo.get(session, run_id, lock=lock)
    if run is None:
        raise NotFound("No such run.")
    return run


def request_cancel(session: Session, run_id: int, *, actor_id: int) -> Run:
    """Cancel a queued run at once; ask a running one to stop at its next check (should_abort)."""
    run = get(session, run_id, lock=True)
    if run.status == "queued":
        run.status, run.finished_at = "cancelled", _now()
    elif run.status == "running":
        run.cancel_requested = True
    else:
        raise Conflict(f"The run has already ended ({run.status}).")
    audit.record(session, actor_id=actor_id, action="cancel", entity="run", entity_id=run_id)
    return run


def retry(session: Session, run_id: int, *, actor_id: int) -> Run:
    """Queue a failed, cancelled or stalled run again as its next attempt (training resumes)."""
    run = get(session, run_id, lock=True)
    if run.status not in RETRYABLE:
        raise Conflict(f"Only failed, cancelled or stalled runs can be retried; this one is {run.status}.")
    run.attempt += 1
    run.status, run.error, run.cancel_requested = "queued", None, False
    run.progress, run.progress_note = 0.0, ""
    run.finished_at, run.heartbeat_at, run.worker = None, None, None
    audit.record(
        session,
        actor_id=actor_id,
        action="retry",
        entity="run",
        entity_id=run_id,
        new={"attempt": run.attempt},
    )
    return run


def claim(session: Session, run_id: int, attempt: int, *, worker: str) -> Run | None:
    """The worker's first step: mark the run running, or None when this job is stale or cancelled."""
    run = repo.get(session, run_id, lock=True)
    if run is None or run.attempt != attempt or run.status != "queued":
        return None
    if run.cancel_requested:
        run.status, run.finished_at = "cancelled", _now()
        return None
    # The database's clock, like the heartbeats and the stall check: workers' clocks may differ.
    run.status, run.worker, run.heartbeat_at = "running", worker, func.now()
    if run.started_at is None:
        run.started_at = func.now()
    session.flush()
    return run


def beat(session: Session, run_id: int, attempt: int, *, progress: float, note: str) -> str | None:
    """Heartbeat with progress; None to go on, "cancel" when asked to stop, "lost" when the run is no
    longer this attempt's (stalled and retried, or ended)."""
    cancel = repo.beat(session, run_id, attempt, progress=min(max(progress, 0.0), 1.0), note=note)
    if cancel is None:
        return "lost"
    return "cancel" if cancel else None


def still_running(session: Session, run_id: int, attempt: int) -> bool:
    """Whether this attempt still owns the run (locks the row until the transaction ends)."""
    run = repo.get(session, run_id, lock=True)
    return run is not None and run.attempt == attempt and run.status == "running"


def finish(
    session: Session,
    run_id: int,
    attempt: int,
    *,
    status: str,
    outputs: dict[str, Any] | None = None,
    error: str | None = None,
) -> bool:
    """Record how this attempt ended; False (nothing written) when the run is no longer this attempt's."""
    assert status in FINISHED
    run = repo.get(session, run_id, lock=True)
    if run is None or run.attempt != attempt or run.status != "running":
        return False
    run.status, run.finished_at, run.error = status, _now(), error
    if outputs:
        run.outputs = {**run.outputs, **outputs}
    if status == "succeeded":
        run.progress = 1.0
    return True


def forget_config_fields(session: Session, run_id: int, fields: tuple[str, ...]) -> None:
    """Blank config fields that held identifiers once they have served (a PACS import's accession list):
    the run keeps its other settings, and the database keeps no accession number after the import."""
    run = repo.get(session, run_id, lock=True)
    if run is not None and any(run.config.get(f) for f in fields):
        run.config = {**run.config, **{f: "" for f in fields}}


def reap_stalled(session: Session) -> list[int]:
    """Mark running runs whose worker went silent as stalled (any process may do this)."""
    return repo.mark_stalled(session, get_settings().run_stall_after_s)


def list_runs(session: Session, *, kind: str | None = None, status: str | None = None) -> list[Run]:
    """Runs for the list page, newest first."""
    return repo.list_runs(session, kind=kind or None, status=status or None)


def _now() -> datetime:
    return datetime.now(UTC)
