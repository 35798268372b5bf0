"""Reading a study: the next case, and submitting an answer so that it is never lost or doubled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.domain import audit_trail
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.viewing import Viewing
from app.persistence.models import Case, ReaderCase, Reading, Study
from app.persistence.repositories import readings as repo

MAX_FREE_TEXT = 2000
MAX_ACTIVE_MS = 24 * 3600 * 1000
# Why a case could not be read, as the reader chooses it (keys stored, labels shown and exported).
UNREADABLE_LABELS = {
    "quality": "Image quality too poor to judge",
    "not_chest": "Not a chest radiograph I can judge (view, body part)",
    "display": "The image did not display properly",
    "other": "Another reason (say which in the text box, if there is one)",
}


@dataclass(frozen=True)
class CaseView:
    """What a reader may know about the case in front of them: nothing about its truth."""

    study: Study
    opaque_id: str
    position: int  # 0-based position in the reader's order
    total: int
    done: int
    is_practice: bool
    # The image the reader will be shown after this one, for the browser to fetch ahead (None: the last).
    next_opaque_id: str | None = None


@dataclass(frozen=True)
class Answer:
    """A reader's answer as submitted by the form."""

    case_opaque_id: str
    client_token: str
    verdict: str | None  # None only with unreadable_reason
    confidence: int | None
    findings: tuple[str, ...] = ()
    free_text: str | None = None
    click: tuple[float, float] | None = None
    active_ms: int | None = None
    # Set only by the revise view: without it an answered case is never overwritten (e.g. a stale tab).
    revise: bool = False
    # Instead of a verdict: the reader could not read the case, for this reason (a key of UNREADABLE_LABELS).
    unreadable_reason: str | None = None
    viewing: Viewing = Viewing()


@dataclass(frozen=True)
class Submitted:
    """A stored answer, and where it left the reader."""

    reading: Reading
    created: bool  # False: a retry, which found the reading it had stored before
    # True: the answer's transaction also put the reader's next case in front of them (its shown time is
    # set): `next_case`, None when the answer was their last. False: the caller asks for it (current_case).
    advanced: bool = False
    next_case: CaseView | None = None


def _check_open(study: Study | None) -> Study:
    """NotFound unless the reader's study exists among theirs and has started."""
    if study is None:
        raise NotFound("No such study among yours.")
    if study.status == "draft":
        raise NotFound("This study has not started yet.")
    return study


def readable_progress(
    session: Session, study_id: int, reader_id: int, *, share: bool = False
) -> tuple[Study, int, int]:
    """The reader's open study (NotFound otherwise) and their (answered, assigned); `share`: FOR SHARE."""
    found = repo.assigned_study_progress(session, study_id, reader_id, share=share)
    study, done, total = found if found is not None else (None, 0, 0)
    return _check_open(study), done, total


def current_case(
    session: Session, study_id: int, reader_id: int, *, shown_time_waits: bool = True
) -> CaseView | None:
    """The reader's next unanswered case (setting its shown time once) with the one after it, or None when
    finished. shown_time_waits=False: the shown time's commit need not wait for the disk (the caller's
    transaction writes nothing else; repo.mark_shown)."""
    study, done, total = readable_progress(session, study_id, reader_id)
    if study.status == "closed" and done < total:
        raise Conflict("This study is closed; it no longer takes answers.")
    return _show(session, study, repo.upcoming(session, study_id, reader_id), done, total, shown_time_waits)


def _show(
    session: Session, study: Study, unread: list[tuple[ReaderCase, Case]], done: int, total: int, waits: bool
) -> CaseView | None:
    """The first of `unread` (the reader's next positions without a reading) as the case in front of the
    reader, its shown time set once, with the one after it to fetch ahead; None when there is none."""
    if not unread:
        return None
    rc, case = unread[0]
    if rc.shown_at is None:
        repo.mark_shown(session, rc.id, datetime.now(UTC), wait_for_disk=waits)
    ahead = served_id(*unread[1]) if len(unread) > 1 else None
    return CaseView(study, served_id(rc, case), rc.position, total, done, case.is_practice, ahead)


def served_id(rc: ReaderCase, case: Case) -> str:
    """The opaque id this reader sees for this presentation: its own (the case's in orders drawn before
    ids were per reader)."""
    return rc.opaque_id or case.opaque_id


def revisable(session: Session, study_id: int, reader_id: int) -> tuple[CaseView, Reading] | None:
    """The reader's last answered case and its latest answer, where the study allows revising."""
    study, done, total = readable_progress(session, study_id, reader_id)
    if not study.allow_revision or study.status != "launched":
        raise Conflict("This study does not allow revising answers.")
    found = repo.last_answered(session, study_id, reader_id)
    if found is None:
        return None
    reading, case = found  # the newest reading of the reader, so the latest revision of its case
    rc = repo.order_entry(session, reader_id, case.id, reading.presentation)
    view = CaseView(study, served_id(rc, case), reading.position, total, done, case.is_practice)
    return view, reading


def _validate(study: Study, answer: Answer) -> None:
    if answer.unreadable_reason is not None:
        if answer.unreadable_reason not in UNREADABLE_LABELS:
            known = ", ".join(UNREADABLE_LABELS)
            raise Invalid(f"Unknown reason for an unreadable case: choose one of {known}.")
        if answer.verdict is not None or answer.confidence is not None or answer.findings:
            raise Invalid("A case flagged unreadable takes no verdict, confidence or findings.")
    else:
        if answer.verdict not in ("real", "synthetic"):
            raise Invalid("Choose a verdict: real (R) or synthetic (S).")
        if answer.confidence is None or not 1 <= answer.confidence <= 5:
            raise Invalid("Choose a confidence from 1 to 5.")
    if not 8 <= len(answer.client_token) <= 64:
        raise Invalid("The form is missing its submission token; reload the page.")
    if answer.findings and not study.ask_findings:
        raise Invalid("This study does not ask for findings.")
    unknown = set(answer.findings) - set(study.findings)
    if unknown:
        raise Invalid(f"Unknown findings: {', '.join(sorted(unknown))}.")
    if answer.free_text and (not study.ask_free_text or len(answer.free_text) > MAX_FREE_TEXT):
        raise Invalid(f"Free text is not asked in this study or is longer than {MAX_FREE_TEXT} characters.")
    if answer.click is not None:
        if not study.ask_click:
            raise Invalid("This study does not ask for a click.")
        for field, v in zip(("click_x", "click_y"), answer.click, strict=True):
            if not 0.0 <= v <= 1.0:  # also false for NaN
                raise Invalid(f"The click lies outside the image: {field} must be from 0 to 1.")
    if answer.active_ms is not None and not 0 <= answer.active_ms <= MAX_ACTIVE_MS:
        raise Invalid(f"The active time is out of range: active_ms must be from 0 to {MAX_ACTIVE_MS}.")
    answer.viewing.check(MAX_ACTIVE_MS)


def _as_dict(r: Reading) -> dict:
    return {
        "case_id": r.case_id,
        "revision": r.revision,
        "verdict": r.verdict,
        "confidence": r.confidence,
        "unreadable_reason": r.unreadable_reason,
        "findings": list(r.findings),
        "free_text": r.free_text,
        "click": [r.click_x, r.click_y],
        "client_token": r.client_token,
    }


def submit(session: Session, study_id: int, reader_id: int, answer: Answer) -> tuple[Reading, bool]:
    """Store an answer; returns (reading, created). A retried submit returns the stored reading."""
    stored = _submit(session, study_id, reader_id, answer, advance=False)
    return stored.reading, stored.created


def submit_and_advance(session: Session, study_id: int, reader_id: int, answer: Answer) -> Submitted:
    """`submit`, and after a first answer to a study case the next case, shown, in the same transaction."""
    # The reading room's next page then needs no transaction of its own: three statements and a commit
    # fewer for every case a reader reads. A practice answer is not advanced: its truth comes first.
    return _submit(session, study_id, reader_id, answer, advance=True)


def _submit(session: Session, study_id: int, reader_id: int, answer: Answer, *, advance: bool) -> Submitted:
    """Store an answer, or find the one a retry stored.

    One reading per reader x case is guaranteed by unique constraints: of two racing submits one inserts
    and the other finds that row (same token) or gets a Conflict (different token). A retry is not looked
    up first (that would cost every submit a query): it fails a check ("already answered", "in order") or
    meets its own row at the insert, and is then found by its token, committed by then under read committed.
    """
    try:
        return _store(session, study_id, reader_id, answer, advance)
    except Conflict:
        again = repo.by_token(session, reader_id, answer.client_token)
        if again is not None:
            return Submitted(again, created=False)
        raise


def _order_entry(
    session: Session, study: Study, reader_id: int, answer: Answer
) -> tuple[ReaderCase, Case, Reading | None, list[tuple[ReaderCase, Case]] | None]:
    """The reader's order entry the answer is for and its latest reading (None: not yet answered), checked:
    a first answer must be for the current case, a second only a revision of the most recent one. Last,
    for an answer to the current case, the reader's next two positions without a reading (locked)."""
    # The common case first: the answer is for the current case, which has no reading yet (one query).
    unread = repo.unread_locked(session, study.id, reader_id)
    if unread and served_id(*unread[0]) == answer.case_opaque_id:
        return unread[0][0], unread[0][1], None, unread[1:]
    found = repo.reader_case(session, study.id, reader_id, answer.case_opaque_id)
    if found is None:
        raise NotFound("That case is not part of your study.")
    rc, case = found
    previous = repo.latest(session, reader_id, case.id, rc.presentation)
    if previous is None:
        raise Conflict("Cases are answered in order; this is not your current case.")
    if not (study.allow_revision and answer.revise):
        raise Conflict("You already answered this case; your first answer was kept.")
    last = repo.last_answered(session, study.id, reader_id)
    if last is None or (last[1].id, last[0].presentation) != (case.id, rc.presentation):
        raise Conflict("Only your most recent answer can be revised.")
    return rc, case, previous, None


def _columns(
    study_id: int, reader_id: int, answer: Answer, rc: ReaderCase, case: Case, previous: Reading | None
) -> dict:
    """The reading row of an answer: a first answer, or a revision of `previous`."""
    return {
        "study_id": study_id,
        "case_id": case.id,
        "reader_id": reader_id,
        "client_token": answer.client_token,
        "presentation": rc.presentation,
        "revision": 0 if previous is None else previous.revision + 1,
        "supersedes_id": previous.id if previous is not None else None,
        "verdict": answer.verdict,
        "confidence": answer.confidence,
        "findings": list(answer.findings),
        "free_text": answer.free_text or None,
        "click_x": answer.click[0] if answer.click else None,
        "click_y": answer.click[1] if answer.click else None,
        "position": rc.position,
        "is_practice": case.is_practice,
        # A revision has no "shown" time of its own here; its duration stays blank in the export.
        "shown_at": rc.shown_at if previous is None else None,
        "client_active_ms": answer.active_ms,
        "unreadable_reason": answer.unreadable_reason,
        **answer.viewing.columns(),
    }


def _store(session: Session, study_id: int, reader_id: int, answer: Answer, advance: bool) -> Submitted:
    """Check the answer against the study and the reader's order, and insert it; Conflict on a clash.
    `advance`: as submit_and_advance."""
    # Held in share mode until commit, so a concurrent close cannot slip in between check and insert.
    study, done, total = readable_progress(session, study_id, reader_id, share=True)
    if study.status != "launched":
        raise Conflict("This study is closed; it no longer takes answers.")
    _validate(study, answer)
    rc, case, previous, after = _order_entry(session, study, reader_id, answer)
    reading = repo.insert_once(session, _columns(study_id, reader_id, answer, rc, case, previous))
    if reading is None:  # a twin stored this answer (or this revision) first
        raise Conflict("You already answered this case; your first answer was kept.")
    audit_trail.record(
        session,
        actor_id=reader_id,
        action="submit" if previous is None else "revise",
        entity="reading",
        entity_id=reading.id,
        old=_as_dict(previous) if previous else None,
        new=_as_dict(reading),
    )
    # A first answer is one more answered. The count came before the position's lock, so an answer to the
    # position before, sent from another tab, may have committed in between and left it one short; whether
    # this was the reader's last position the locked rows tell, read after that commit.
    done += int(previous is None)
    if done >= total or (previous is None and not after):
        repo.mark_completed(session, study_id, reader_id)
    if not advance or after is None or case.is_practice:
        return Submitted(reading, created=True)
    # The answer's commit waits for the disk, and this shown time's with it.
    return Submitted(reading, True, advanced=True, next_case=_show(session, study, after, done, total, True))


def practice_feedback(session: Session, reading: Reading) -> str | None:
    """For a practice case only: the truth, so the reader can calibrate. None for study cases."""
    return repo.case_truth(session, reading.case_id) if reading.is_practice else None


def image_for_reader(session: Session, reader_id: int, opaque_id: str) -> str | None:
    """The blob hash of the image behind an id if its case is in this reader's order of a study that is not
    a draft; None otherwise."""
    return repo.image_for_reader(session, reader_id, opaque_id)


def case_by_opaque(session: Session, opaque_id: str) -> Case | None:
    """Any case by its study-level opaque id or a reader's (for researchers and admins)."""
    return repo.case_by_opaque(session, opaque_id)
