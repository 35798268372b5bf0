"""pseudonymous patient and study ids: images gain a study id, and outside data's patient ids become keyed
hashes

Patient ids that earlier imports stored in clear (a labels CSV's, ChestX-ray14's) are replaced by their
pseudonyms under the identity key (app/domain/identities.py); ids of sets this app generated (phantoms,
samples, LCO archives) are no one's and stay. Patient records written beside snapshots before this revision
hash the clear ids, so a model trained earlier on an outside set no longer matches that set's patients:
retrain it, or re-import its set from the source files, for leakage checks to see the overlap. The
downgrade keeps the pseudonyms (the clear ids are gone) and drops the study ids.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 04:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from app.domain.identities import GENERATED_SOURCES, pseudonym

    op.add_column('images', sa.Column('study_id', sa.String(length=100), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT DISTINCT i.patient_id FROM images i JOIN image_sets s ON s.id = i.image_set_id "
            "WHERE i.patient_id IS NOT NULL AND NOT (s.source = ANY(:generated))"
        ),
        {"generated": sorted(GENERATED_SOURCES)},
    ).scalars()
    for clear in list(rows):
        bind.execute(
            sa.text(
                "UPDATE images SET patient_id = :hashed FROM image_sets s "
                "WHERE s.id = images.image_set_id AND images.patient_id = :clear "
                "AND NOT (s.source = ANY(:generated))"
            ),
            {"hashed": pseudonym("patient", clear), "clear": clear, "generated": sorted(GENERATED_SOURCES)},
        )


def downgrade() -> None:
    op.drop_column('images', 'study_id')
