"""study collaborators: studies belong to their owner and the researchers the owner adds

A study's owner is studies.created_by_id; study_collaborators lists the researchers who may manage it
besides. Other researchers no longer see it (the app answers 404); admins see every study. The app's role
(0005) may read, add and remove collaborators.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 20:30:00
"""

from alembic import op
import sqlalchemy as sa

from app.persistence.migrate import app_role

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

APP_ROLE = app_role()  # DB_APP_ROLE, read when the revision is loaded


def upgrade() -> None:
    op.create_table(
        'study_collaborators',
        sa.Column('study_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('added_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(
            ['study_id'], ['studies.id'], name=op.f('fk_study_collaborators_study_id_studies'), ondelete='CASCADE'
        ),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_study_collaborators_user_id_users')),
        sa.PrimaryKeyConstraint('study_id', 'user_id', name=op.f('pk_study_collaborators')),
    )
    op.execute(f"GRANT SELECT, INSERT, DELETE ON study_collaborators TO {APP_ROLE}")


def downgrade() -> None:
    op.drop_table('study_collaborators')
