"""the reading room's index: readings by study, reader and position

The reader's current case was found as "the first position in the order without a reading", which Postgres
answered by reading the reader's answers again for every position already answered (at case 400, 20 ms of
Postgres time; one reader's page p50 was 77 ms over cases 700-800). The current case is now the first
position after the highest one answered, one descent of this index, and the reader's count of answers an
index range. It replaces the index on study_id alone, whose work it does. Building it blocks new answers
for as long as it takes (seconds for a million readings): upgrade between reading sessions.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 12:00:00
"""

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        'ix_readings_study_id_reader_id_position',
        'readings',
        ['study_id', 'reader_id', 'position', 'revision'],
        unique=False,
    )
    op.drop_index('ix_readings_study_id', table_name='readings')


def downgrade() -> None:
    op.create_index('ix_readings_study_id', 'readings', ['study_id'], unique=False)
    op.drop_index('ix_readings_study_id_reader_id_position', table_name='readings')
