"""unreadable flags and viewing conditions: a reading may flag its case unreadable; readings record how the
image was viewed; a study may ask for a minimum window size

A reading is now either a verdict with a confidence or an unreadable flag with its reason (check `answer`).
The viewing columns are blank for readings stored before this revision. The app's role (0005) keeps its
grants: new columns of readings and studies are covered by the table grants.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 01:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

REASONS = ("quality", "not_chest", "display", "other")
VIEWING = [
    ('screen_w', sa.Integer()),
    ('screen_h', sa.Integer()),
    ('window_w', sa.Integer()),
    ('window_h', sa.Integer()),
    ('device_pixel_ratio', sa.Float()),
    ('zoom_at_submit', sa.Float()),
    ('one_to_one_reached', sa.Boolean()),
    ('one_to_one_ms', sa.Integer()),
    ('browser', sa.String(length=200)),
]


def upgrade() -> None:
    op.add_column('readings', sa.Column('unreadable_reason', sa.String(length=20), nullable=True))
    op.alter_column('readings', 'verdict', existing_type=sa.String(length=20), nullable=True)
    op.alter_column('readings', 'confidence', existing_type=sa.Integer(), nullable=True)
    op.create_check_constraint(
        op.f('ck_readings_answer'),
        'readings',
        "(unreadable_reason IS NULL AND verdict IS NOT NULL AND confidence IS NOT NULL) OR "
        "(unreadable_reason IS NOT NULL AND verdict IS NULL AND confidence IS NULL)",
    )
    op.create_check_constraint(
        op.f('ck_readings_unreadable_reason'),
        'readings',
        "unreadable_reason IS NULL OR unreadable_reason IN (" + ", ".join(f"'{r}'" for r in REASONS) + ")",
    )
    for name, type_ in VIEWING:
        op.add_column('readings', sa.Column(name, type_, nullable=True))
    op.add_column('studies', sa.Column('min_window_w', sa.Integer(), nullable=True))
    op.add_column('studies', sa.Column('min_window_h', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('studies', 'min_window_h')
    op.drop_column('studies', 'min_window_w')
    for name, _ in reversed(VIEWING):
        op.drop_column('readings', name)
    op.drop_constraint(op.f('ck_readings_unreadable_reason'), 'readings', type_='check')
    op.drop_constraint(op.f('ck_readings_answer'), 'readings', type_='check')
    op.drop_column('readings', 'unreadable_reason')
    op.alter_column('readings', 'confidence', existing_type=sa.Integer(), nullable=False)
    op.alter_column('readings', 'verdict', existing_type=sa.String(length=20), nullable=False)
