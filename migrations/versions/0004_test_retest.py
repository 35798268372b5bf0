"""test-retest: repeated presentations of a case

Adds studies.retest_percent and retest_gap; reader_cases.presentation (1 first showing, 2 repeat) and
reader_cases.opaque_id (a repeat's own id); readings.presentation. The one-per-reader-x-case unique
constraints now include the presentation.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 17:30:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('studies', sa.Column('retest_percent', sa.Integer(), server_default='0', nullable=False))
    op.add_column('studies', sa.Column('retest_gap', sa.Integer(), server_default='10', nullable=False))
    op.add_column('reader_cases', sa.Column('presentation', sa.Integer(), server_default='1', nullable=False))
    op.add_column('reader_cases', sa.Column('opaque_id', sa.String(length=40), nullable=True))
    op.create_unique_constraint(op.f('uq_reader_cases_opaque_id'), 'reader_cases', ['opaque_id'])
    op.drop_constraint('uq_reader_cases_reader_id_case_id', 'reader_cases', type_='unique')
    op.create_unique_constraint(
        op.f('uq_reader_cases_reader_id_case_id_presentation'), 'reader_cases', ['reader_id', 'case_id', 'presentation']
    )
    op.add_column('readings', sa.Column('presentation', sa.Integer(), server_default='1', nullable=False))
    op.drop_constraint('uq_readings_reader_id_case_id_revision', 'readings', type_='unique')
    op.create_unique_constraint(
        op.f('uq_readings_reader_id_case_id_presentation_revision'),
        'readings',
        ['reader_id', 'case_id', 'presentation', 'revision'],
    )


def downgrade() -> None:
    op.drop_constraint(op.f('uq_readings_reader_id_case_id_presentation_revision'), 'readings', type_='unique')
    op.create_unique_constraint('uq_readings_reader_id_case_id_revision', 'readings', ['reader_id', 'case_id', 'revision'])
    op.drop_column('readings', 'presentation')
    op.drop_constraint(op.f('uq_reader_cases_reader_id_case_id_presentation'), 'reader_cases', type_='unique')
    op.create_unique_constraint('uq_reader_cases_reader_id_case_id', 'reader_cases', ['reader_id', 'case_id'])
    op.drop_constraint(op.f('uq_reader_cases_opaque_id'), 'reader_cases', type_='unique')
    op.drop_column('reader_cases', 'opaque_id')
    op.drop_column('reader_cases', 'presentation')
    op.drop_column('studies', 'retest_gap')
    op.drop_column('studies', 'retest_percent')
