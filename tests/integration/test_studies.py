"""Study design rules that protect blinding and the design's integrity."""

from __future__ import annotations

import pytest

from app.domain import studies
from app.domain.errors import Invalid
from tests import factories


def test_sets_of_different_resolution_cannot_share_a_study(session, store, people):
    real = factories.phantom_set(session, store, name="real-64", kind="real", size=64)
    big = factories.phantom_set(session, store, name="syn-128", kind="synthetic", size=128, seed=1)
    design = studies.StudyDesign(title="Mixed", image_set_ids=[real.id, big.id], n_cases=4, resolution=64)
    with pytest.raises(Invalid, match="different resolutions"):
        studies.create_study(session, store, design, actor_id=people["researcher"].id)


def test_study_resolution_may_not_exceed_the_sets(session, store, people):
    real = factories.phantom_set(session, store, name="real-64", kind="real", size=64)
    syn = factories.phantom_set(session, store, name="syn-64", kind="synthetic", size=64, seed=1)
    design = studies.StudyDesign(title="Up", image_set_ids=[real.id, syn.id], n_cases=4, resolution=128)
    with pytest.raises(Invalid, match="upsampling"):
        studies.create_study(session, store, design, actor_id=people["researcher"].id)
    design.resolution = 64
    study = studies.create_study(session, store, design, actor_id=people["researcher"].id)
    assert len(studies.repo.cases(session, study.id)) == 4
