"""Study design: drawing cases from image sets, editing a draft, launching, assigning readers."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.domain import audit_trail, leakage
from app.domain.allocation import Candidate, draw_cases, reader_order, with_repeats
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.rendering import render
from app.domain.security import new_opaque_id
from app.persistence.blobs import BlobStore
from app.persistence.models import Case, ImageSet, ReaderCase, Study, StudyImageSet, StudyReader, User
from app.persistence.repositories import studies as repo

MAX_CASES = 5000
MIN_WINDOW = (200, 10_000)  # bounds of a study's minimum window size, CSS px


@dataclass
class StudyDesign:
    """What a researcher chooses when designing a study."""

    title: str
    image_set_ids: list[int]
    n_cases: int
    instructions: str = ""
    ratio_real: int = 1
    ratio_synthetic: int = 1
    stratify_finding: str | None = None
    resolution: int = 256
    ask_findings: bool = True
    ask_free_text: bool = False
    ask_click: bool = False
    allow_revision: bool = False
    practice_cases: int = 0
    retest_percent: int = 0  # test-retest: share of the main cases shown again, unannounced
    retest_gap: int = 10  # ... at least this many cases after their first showing
    reader_ids: list[int] = field(default_factory=list)
    seed: int | None = None
    # The smallest browser window (CSS px) readers should use; None: no minimum.
    min_window_w: int | None = None
    min_window_h: int | None = None


def get_study(session: Session, study_id: int, *, lock: bool = False) -> Study:
    """The study, or NotFound; `lock` holds it against concurrent design changes."""
    study = repo.get(session, study_id, lock=lock)
    if study is None:
        raise NotFound("No such study.")
    return study


def _validate(session: Session, design: StudyDesign) -> list[ImageSet]:
    if not design.title.strip():
        raise Invalid("The study needs a title.")
    if not 1 <= design.n_cases <= MAX_CASES:
        raise Invalid(f"The number of cases must be between 1 and {MAX_CASES}.")
    if design.ratio_real < 0 or design.ratio_synthetic < 0 or design.ratio_real + design.ratio_synthetic == 0:
        raise Invalid("The real:synthetic ratio needs non-negative parts that are not both zero.")
    if not 0 <= design.practice_cases <= 50:
        raise Invalid("Practice cases must be between 0 and 50.")
    if not 0 <= design.retest_percent <= 50:
        raise Invalid("The share of cases shown again must be between 0 and 50 %.")
    if not 1 <= design.retest_gap <= 1000:
        raise Invalid("Repeated cases must come back between 1 and 1000 cases after their first showing.")
    if design.retest_percent and design.retest_gap >= design.n_cases:
        raise Invalid("The gap before a repeat must be smaller than the number of cases.")
    if not 64 <= design.resolution <= 2048:
        raise Invalid("The study resolution must be between 64 and 2048 pixels.")
    for side, v in (("width", design.min_window_w), ("height", design.min_window_h)):
        if v is not None and not MIN_WINDOW[0] <= v <= MIN_WINDOW[1]:
            raise Invalid(f"A minimum window {side} must be from {MIN_WINDOW[0]} to {MIN_WINDOW[1]} pixels.")
    sets = [session.get(ImageSet, i) for i in dict.fromkeys(design.image_set_ids)]
    if not sets or any(s is None for s in sets):
        raise Invalid("Choose at least one existing image set.")
    kinds = {s.kind for s in sets if s is not None}
    if design.ratio_real and "real" not in kinds:
        raise Invalid("The ratio asks for real cases, so choose at least one real image set.")
    if design.ratio_synthetic and "synthetic" not in kinds:
        raise Invalid("The ratio asks for synthetic cases, so choose at least one synthetic image set.")
    _check_resolutions(sets)  # type: ignore[arg-type]
    findings = _findings(sets)  # type: ignore[arg-type]
    if design.stratify_finding and design.stratify_finding not in findings:
        raise Invalid(f"'{design.stratify_finding}' is not a finding of the chosen sets.")
    for rid in design.reader_ids:
        user = session.get(User, rid)
        if user is None or user.role != "reader" or not user.is_active:
            raise Invalid("Only active readers can be assigned to a study.")
    return sets  # type: ignore[return-value]


def _check_resolutions(sets: list[ImageSet]) -> None:
    """Every case must be resized the same way, or the resampling itself tells the sets apart."""
    sizes = sorted({s.resolution for s in sets})
    if len(sizes) > 1:
        listed = ", ".join(f"{s.name} ({s.resolution} px)" for s in sets)
        raise Invalid(
            f"The chosen sets were rendered at different resolutions: {listed}. Their images would be "
            "resized differently, which readers could notice besides the anatomy; import them at one "
            "resolution."
        )
    # A study resolution above or below the sets' is fine: every case is resampled the same way.


def _findings(sets: list[ImageSet]) -> list[str]:
    """The checklist: every finding of the chosen sets' schemas, first-seen order."""
    return list(dict.fromkeys(f for s in sets for f in s.label_schema))


def _draw(
    session: Session, store: BlobStore, study: Study, design: StudyDesign, sets: list[ImageSet]
) -> None:
    """Draw cases and render each at the study's resolution through the shared path."""
    pool = [
        Candidate(i, kind, tuple(labels))
        for i, kind, labels in repo.candidates(session, [s.id for s in sets])
    ]
    draw = draw_cases(
        [c for c in pool if c.truth == "real"],
        [c for c in pool if c.truth == "synthetic"],
        n_cases=design.n_cases,
        ratio_real=design.ratio_real,
        ratio_synthetic=design.ratio_synthetic,
        practice=design.practice_cases,
        stratify=design.stratify_finding,
        seed=study.seed,
    )
    chosen = [(c, False) for c in draw.main] + [(c, True) for c in draw.practice]
    masters = repo.image_hashes(session, [c.image_id for c, _ in chosen])
    for cand, practice in chosen:
        rendered = render(store.get(masters[cand.image_id]), size=study.resolution)
        store.put(rendered.sha256, rendered.png)
        session.add(
            Case(
                study_id=study.id,
                image_id=cand.image_id,
                opaque_id=new_opaque_id(),
                sha256=rendered.sha256,
                truth=cand.truth,
                is_practice=practice,
            )
        )
    for s in sets:
        session.add(StudyImageSet(study_id=study.id, image_set_id=s.id))
    for rid in dict.fromkeys(design.reader_ids):
        session.add(StudyReader(study_id=study.id, reader_id=rid))


def _apply(study: Study, design: StudyDesign, sets: list[ImageSet]) -> None:
    study.title = design.title.strip()
    study.instructions = design.instructions.strip()
    study.n_cases = design.n_cases
    study.ratio_real, study.ratio_synthetic = design.ratio_real, design.ratio_synthetic
    study.stratify_finding = design.stratify_finding or None
    study.resolution = design.resolution
    study.findings = _findings(sets)
    study.ask_findings, study.ask_free_text = design.ask_findings, design.ask_free_text
    study.ask_click, study.allow_revision = design.ask_click, design.allow_revision
    study.practice_cases = design.practice_cases
    study.retest_percent, study.retest_gap = design.retest_percent, design.retest_gap
    study.min_window_w, study.min_window_h = design.min_window_w, design.min_window_h


def create_study(session: Session, store: BlobStore, design: StudyDesign, *, actor_id: int) -> Study:
    """A draft study with its cases drawn; readers' orders are drawn at launch."""
    sets = _validate(session, design)
    seed = design.seed if design.seed is not None else secrets.randbits(31)
    study = Study(seed=seed, created_by_id=actor_id, title="", n_cases=0, resolution=design.resolution)
    _apply(study, design, sets)
    session.add(study)
    session.flush()
    _draw(session, store, study, design, sets)
    session.flush()
    audit_trail.record(
        session,
        actor_id=actor_id,
        action="create",
        entity="study",
        entity_id=study.id,
        new=asdict(design) | {"seed": seed},
    )
    return study


def update_study(
    session: Session, store: BlobStore, study_id: int, design: StudyDesign, *, actor_id: int
) -> Study:
    """Change a draft's design and draw its cases again; a launched study is frozen."""
    study = get_study(session, study_id, lock=True)
    if study.status != "draft" or study.frozen_at is not None:
        raise Conflict("The study's design is frozen: it was launched. Create a new study to change it.")
    sets = _validate(session, design)
    if design.seed is not None:
        study.seed = design.seed
    repo.clear_design(session, study.id)
    study.leakage = None  # the cases are drawn again: the old report no longer describes them
    _apply(study, design, sets)
    session.flush()
    _draw(session, store, study, design, sets)
    audit_trail.record(
        session,
        actor_id=actor_id,
        action="update",
        entity="study",
        entity_id=study.id,
        new=asdict(design) | {"seed": study.seed},
    )
    return study


def _allocate(session: Session, study: Study, reader_id: int) -> None:
    """Draw and store one reader's order: practice first, then the main cases with any repeats."""
    cases = repo.cases(session, study.id)
    practice = [(c.id, c.truth) for c in cases if c.is_practice]
    main = [(c.id, c.truth) for c in cases if not c.is_practice]
    kw = {"seed": study.seed, "reader_id": reader_id}
    first = reader_order(practice, ratio_real=1, ratio_synthetic=1, **kw)
    rest = reader_order(main, ratio_real=study.ratio_real, ratio_synthetic=study.ratio_synthetic, **kw)
    order = [(c, 1) for c in first] + with_repeats(
        rest, percent=study.retest_percent, gap=study.retest_gap, **kw
    )
    for position, (case_id, presentation) in enumerate(order):
        session.add(
            ReaderCase(
                study_id=study.id,
                reader_id=reader_id,
                case_id=case_id,
                position=position,
                presentation=presentation,
                # Every reader sees each image under an id of their own: readers cannot compare notes by id.
                opaque_id=new_opaque_id(),
            )
        )


def check_leakage(session: Session, store: BlobStore, study: Study) -> leakage.LeakageReport:
    """Run the leakage gate on the study's rendered cases and keep its report on the study."""
    cases = repo.cases(session, study.id)
    truths = [c.truth for c in cases]
    report = leakage.check(
        lambda i: store.get(cases[i].sha256), truths, size=study.resolution, seed=study.seed
    )
    study.leakage = report.to_json() | {"checked_at": datetime.now(UTC).isoformat(timespec="seconds")}
    return report


def launch(session: Session, store: BlobStore, study_id: int, *, actor_id: int) -> Study:
    """Freeze the design and draw every assigned reader's order, unless the leakage gate blocks it.

    A blocked launch leaves the study a draft with the gate's report (and its reasons) on it, so the
    caller commits either way and shows the study.
    """
    study = get_study(session, study_id, lock=True)
    if study.status != "draft":
        raise Conflict("The study was already launched.")
    readers = repo.readers(session, study.id)
    if not readers:
        raise Invalid("Assign at least one reader before launching.")
    report = check_leakage(session, store, study)
    if not report.passed:
        audit_trail.record(
            session,
            actor_id=actor_id,
            action="launch_blocked",
            entity="study",
            entity_id=study.id,
            new={"reasons": report.reasons},
        )
        return study
    for reader in readers:
        _allocate(session, study, reader.id)
    study.status = "launched"
    # Launch is the freeze: readings never update the study row (a share lock held by every submit
    # would otherwise have to be upgraded, and two submits upgrading at once deadlock).
    study.launched_at = study.frozen_at = datetime.now(UTC)
    audit_trail.record(
        session,
        actor_id=actor_id,
        action="launch",
        entity="study",
        entity_id=study.id,
        new={"readers": [r.id for r in readers]},
    )
    return study


def add_reader(session: Session, study_id: int, reader_id: int, *, actor_id: int) -> None:
    """Assign a reader (also after launch: it changes no case, only adds an order)."""
    study = get_study(session, study_id, lock=True)
    if study.status == "closed":
        raise Conflict("The study is closed.")
    user = session.get(User, reader_id)
    if user is None or user.role != "reader" or not user.is_active:
        raise Invalid("Only active readers can be assigned to a study.")
    if repo.is_reader(session, study.id, reader_id):
        raise Conflict(f"{user.name} already reads this study.")
    session.add(StudyReader(study_id=study.id, reader_id=reader_id))
    session.flush()
    if study.status == "launched":
        _allocate(session, study, reader_id)
    audit_trail.record(
        session,
        actor_id=actor_id,
        action="add_reader",
        entity="study",
        entity_id=study.id,
        new={"reader_id": reader_id},
    )


def close(session: Session, study_id: int, *, actor_id: int) -> Study:
    """Stop accepting readings."""
    study = get_study(session, study_id, lock=True)
    if study.status != "launched":
        raise Conflict("Only a launched study can be closed.")
    study.status = "closed"
    audit_trail.record(session, actor_id=actor_id, action="close", entity="study", entity_id=study.id)
    return study
