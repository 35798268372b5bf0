"""Researchers design studies: list, create, edit a draft, assign readers, launch, close."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import RedirectResponse, Response

from app.domain import ownership
from app.domain import studies as studies_domain
from app.domain.errors import DomainError
from app.persistence.repositories import image_sets as sets_repo
from app.persistence.repositories import memorisation
from app.persistence.repositories import readings as readings_repo
from app.persistence.repositories import studies as repo
from app.persistence.repositories import users as users_repo
from app.web.deps import Db, ManagedStudyId, Staff, Store
from app.web.edge import DbId
from app.web.planning import plan_context
from app.web.templating import is_htmx, render

router = APIRouter(prefix="/studies")


class StudyForm(BaseModel):
    """The study form as posted; checkboxes arrive as 'on' or not at all."""

    title: str = Field(min_length=1, max_length=200)
    instructions: str = Field(default="", max_length=10_000)
    image_set_ids: list[DbId] = Field(default_factory=list)
    n_cases: int = Field(ge=1, le=studies_domain.MAX_CASES)
    ratio_real: int = Field(default=1, ge=0, le=100)
    ratio_synthetic: int = Field(default=1, ge=0, le=100)
    stratify_finding: str = Field(default="", max_length=100)
    resolution: int = Field(default=256, ge=64, le=2048)
    ask_findings: bool = False
    ask_free_text: bool = False
    ask_click: bool = False
    allow_revision: bool = False
    practice_cases: int = Field(default=0, ge=0, le=50)
    retest_percent: int = Field(default=0, ge=0, le=50)
    retest_gap: int = Field(default=10, ge=1, le=1000)
    reader_ids: list[DbId] = Field(default_factory=list)
    seed: str = Field(default="", pattern=r"^\d{0,10}$")
    # Blank: no minimum. A reader in a smaller window is told before the first case.
    min_window_w: str = Field(default="", pattern=r"^\d{0,5}$")
    min_window_h: str = Field(default="", pattern=r"^\d{0,5}$")
    # The planning region's inputs ride along, so that a re-rendered form keeps them; the design ignores them.
    plan_auc: str = Field(default="", max_length=20)
    plan_pilot: str = Field(default="", max_length=20)

    def design(self) -> studies_domain.StudyDesign:
        """The domain's view of the form."""
        data = self.model_dump(exclude={"plan_auc", "plan_pilot"})
        data["stratify_finding"] = self.stratify_finding or None
        data["seed"] = int(self.seed) % 2**31 if self.seed else None
        data["min_window_w"] = int(self.min_window_w) if self.min_window_w else None
        data["min_window_h"] = int(self.min_window_h) if self.min_window_h else None
        return studies_domain.StudyDesign(**data)


def _form_page(
    request: Request,
    db: Db,
    user,
    *,
    form: dict,
    study=None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    sets = sets_repo.list_all(db)
    plan_values = {k: str(v) for k, v in form.items() if v is not None}
    return render(
        request,
        "pages/studies/form.html",
        {
            "user": user,
            "form": form,
            "study": study,
            "error": error,
            "sets": sets,
            "audits": memorisation.latest_audits(db, [s.id for s in sets]),
            "readers": users_repo.active_readers(db),
            **plan_context(db, plan_values, len(form["reader_ids"])),
        },
        status_code=status_code,
    )


DEFAULT_FORM = {
    "n_cases": 20,
    "ratio_real": 1,
    "ratio_synthetic": 1,
    "resolution": 256,
    "ask_findings": True,
    "practice_cases": 0,
    "retest_percent": 10,  # the usual share for test-retest; 0 turns it off
    "retest_gap": 10,
    "min_window_w": None,
    "min_window_h": None,
    "image_set_ids": [],
    "reader_ids": [],
    "instructions": "Each image is either a real chest radiograph or a synthetic one made by a "
    "generative model. Decide which, say how confident you are, and tick the "
    "findings you see.",
}


@router.get("")
def list_studies(request: Request, db: Db, user: Staff) -> Response:
    """The studies the user manages (an admin: all), with their state."""
    studies = ownership.studies_of(db, user)
    return render(request, "pages/studies/list.html", {"user": user, "studies": studies})


@router.get("/new")
def new_study(
    request: Request, db: Db, user: Staff, image_set_ids: Annotated[list[DbId] | None, Query()] = None
) -> Response:
    """The empty study form; ?image_set_ids= preselects sets (e.g. a sampling run's new set)."""
    return _form_page(request, db, user, form={**DEFAULT_FORM, "image_set_ids": image_set_ids or []})


@router.post("")
def create(
    request: Request, db: Db, store: Store, user: Staff, form: Annotated[StudyForm, Form()]
) -> Response:
    """Create a draft study and draw its cases."""
    try:
        study = studies_domain.create_study(db, store, form.design(), actor_id=user.id)
    except DomainError as exc:
        db.rollback()
        return _form_page(
            request, db, user, form=form.model_dump(), error=str(exc), status_code=exc.status_code
        )
    db.commit()
    return RedirectResponse(f"/studies/{study.id}", status_code=303)


@router.get("/{study_id}")
def detail(request: Request, db: Db, user: Staff, study_id: ManagedStudyId) -> Response:
    """A study's design, readers and progress."""
    study = studies_domain.get_study(db, study_id)
    cases = repo.cases(db, study_id)
    readers = repo.readers(db, study_id)
    assigned = {r.id for r in readers}
    collaborators = repo.collaborators(db, study_id)
    return render(
        request,
        "pages/studies/detail.html",
        {
            "user": user,
            "study": study,
            "sets": repo.image_sets(db, study_id),
            "readers": readers,
            "progress": readings_repo.progress_by_reader(db, study_id),
            "n_real": sum(1 for c in cases if c.truth == "real" and not c.is_practice),
            "n_synthetic": sum(1 for c in cases if c.truth == "synthetic" and not c.is_practice),
            "n_practice": sum(1 for c in cases if c.is_practice),
            "other_readers": [r for r in users_repo.active_readers(db) if r.id not in assigned],
            "owner": users_repo.by_id(db, study.created_by_id) if study.created_by_id else None,
            "collaborators": collaborators,
            "may_add_collaborators": user.role == "admin" or study.created_by_id == user.id,
            "other_staff": [
                u
                for u in users_repo.active_staff(db)
                if u.id != study.created_by_id and u.id not in {c.id for c in collaborators}
            ],
            "error": request.query_params.get("error"),
        },
    )


@router.get("/{study_id}/edit")
def edit_page(request: Request, db: Db, user: Staff, study_id: ManagedStudyId) -> Response:
    """The form filled with a draft's design."""
    study = studies_domain.get_study(db, study_id)
    form = {
        c: getattr(study, c)
        for c in (
            "title",
            "instructions",
            "n_cases",
            "ratio_real",
            "ratio_synthetic",
            "resolution",
            "ask_findings",
            "ask_free_text",
            "ask_click",
            "allow_revision",
            "practice_cases",
            "retest_percent",
            "retest_gap",
            "seed",
            "min_window_w",
            "min_window_h",
        )
    }
    form["stratify_finding"] = study.stratify_finding or ""
    form["image_set_ids"] = [s.id for s in repo.image_sets(db, study_id)]
    form["reader_ids"] = [r.id for r in repo.readers(db, study_id)]
    return _form_page(request, db, user, form=form, study=study)


@router.post("/{study_id}")
def update(
    request: Request,
    db: Db,
    store: Store,
    user: Staff,
    study_id: ManagedStudyId,
    form: Annotated[StudyForm, Form()],
) -> Response:
    """Save a draft's new design; refused once the study is launched."""
    study = studies_domain.get_study(db, study_id)
    try:
        studies_domain.update_study(db, store, study_id, form.design(), actor_id=user.id)
    except DomainError as exc:
        db.rollback()
        return _form_page(
            request,
            db,
            user,
            form=form.model_dump(),
            study=study,
            error=str(exc),
            status_code=exc.status_code,
        )
    db.commit()
    return RedirectResponse(f"/studies/{study_id}", status_code=303)


@router.post("/{study_id}/launch")
def launch(db: Db, store: Store, user: Staff, study_id: ManagedStudyId) -> Response:
    """Freeze the design and draw the readers' orders; a blocked launch shows the gate's reasons."""
    studies_domain.launch(db, store, study_id, actor_id=user.id)
    db.commit()
    return RedirectResponse(f"/studies/{study_id}", status_code=303)


@router.post("/{study_id}/leakage")
def check_leakage(request: Request, db: Db, store: Store, user: Staff, study_id: ManagedStudyId) -> Response:
    """Run the leakage gate now (a draft's researcher wants to know before launch); the report fragment."""
    study = studies_domain.get_study(db, study_id, lock=True)
    if study.status == "draft":
        studies_domain.check_leakage(db, store, study)
    db.commit()
    if not is_htmx(request):
        return RedirectResponse(f"/studies/{study_id}", status_code=303)
    return render(request, "partials/studies/leakage.html", {"user": user, "study": study})


@router.post("/{study_id}/readers")
def add_reader(db: Db, user: Staff, study_id: ManagedStudyId, reader_id: Annotated[DbId, Form()]) -> Response:
    """Assign another reader."""
    studies_domain.add_reader(db, study_id, reader_id, actor_id=user.id)
    db.commit()
    return RedirectResponse(f"/studies/{study_id}", status_code=303)


@router.post("/{study_id}/close")
def close(db: Db, user: Staff, study_id: ManagedStudyId) -> Response:
    """Stop taking readings."""
    studies_domain.close(db, study_id, actor_id=user.id)
    db.commit()
    return RedirectResponse(f"/studies/{study_id}", status_code=303)


@router.post("/{study_id}/collaborators")
def add_collaborator(
    db: Db, user: Staff, study_id: ManagedStudyId, user_id: Annotated[DbId, Form()]
) -> Response:
    """Let another researcher manage the study (its owner or an admin only)."""
    ownership.add_collaborator(db, studies_domain.get_study(db, study_id), user_id, actor=user)
    db.commit()
    return RedirectResponse(f"/studies/{study_id}", status_code=303)
