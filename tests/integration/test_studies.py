"""Study design rules that protect blinding and the design's integrity."""

from __future__ import annotations

import pytest

from app.domain import studies
from app.domain.errors import Conflict, Invalid
from app.persistence.db import get_sessionmaker
from tests import factories


def test_sets_of_different_resolution_cannot_share_a_study(session, store, people):
    real = factories.phantom_set(session, store, name="real-64", kind="real", size=64)
    big = factories.phantom_set(session, store, name="syn-128", kind="synthetic", size=128, seed=1)
    design = studies.StudyDesign(title="Mixed", image_set_ids=[real.id, big.id], n_cases=4, resolution=64)
    with pytest.raises(Invalid, match="different resolutions"):
        studies.create_study(session, store, design, actor_id=people["researcher"].id)


def test_a_study_may_resample_sets_that_share_one_resolution(session, store, people):
    from PIL import Image as PILImage

    real = factories.phantom_set(session, store, name="real-64", kind="real", size=64)
    syn = factories.phantom_set(session, store, name="syn-64", kind="synthetic", size=64, seed=1)
    design = studies.StudyDesign(title="Up", image_set_ids=[real.id, syn.id], n_cases=4, resolution=128)
    study = studies.create_study(session, store, design, actor_id=people["researcher"].id)
    cases = studies.repo.cases(session, study.id)
    assert len(cases) == 4
    for case in cases:  # every case, real or synthetic, went through the same 64 -> 128 px path
        with PILImage.open(store.path(case.sha256)) as img:
            assert img.size == (128, 128) and img.mode == "L"


def test_a_repeat_gap_must_fit_inside_the_study(session, store, people):
    real = factories.phantom_set(session, store, name="real", kind="real", n=6, seed=0)
    synthetic = factories.phantom_set(session, store, name="synthetic", kind="synthetic", n=6, seed=1)
    design = studies.StudyDesign(
        title="t",
        image_set_ids=[real.id, synthetic.id],
        n_cases=8,
        resolution=64,
        retest_percent=10,
        retest_gap=8,
    )
    with pytest.raises(Invalid, match="gap before a repeat"):
        studies.create_study(session, store, design, actor_id=people["researcher"].id)


def test_a_study_closed_meanwhile_is_seen_as_closed_under_the_lock(session, store, people):
    """A study the session already holds (loaded before the change locks it) takes the locked row's values,
    so a second close (another tab, a double click) is refused, not repeated."""
    study = factories.launched_study(session, store, readers=[people["reader"]], creator=people["researcher"])
    session.commit()
    with get_sessionmaker()() as first, get_sessionmaker()() as second:
        loaded = studies.get_study(first, study.id)  # held in the session, as a route may hold it
        assert loaded.status == "launched"
        studies.close(second, study.id, actor_id=people["researcher"].id)
        second.commit()
        with pytest.raises(Conflict):
            studies.close(first, study.id, actor_id=people["researcher"].id)
