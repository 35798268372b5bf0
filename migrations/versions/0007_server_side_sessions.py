"""server-side sessions: a signed-in browser is a row that logout, deactivation and a new password end

The cookie carries a random token; web_sessions keeps its SHA-256, the user, when the session began and was
last seen, and when and why it ended. The app's role (0005) may add, touch, end and prune sessions.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 22:00:00
"""

from alembic import op
import sqlalchemy as sa

from app.persistence.migrate import app_role

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

APP_ROLE = app_role()  # DB_APP_ROLE, read when the revision is loaded
REASONS = ("logout", "deactivated", "password", "admin", "expired", "idle")


def upgrade() -> None:
    op.create_table(
        'web_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('end_reason', sa.String(length=20), nullable=True),
        sa.Column('client', sa.String(length=64), nullable=False),
        sa.Column('user_agent', sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "end_reason IS NULL OR end_reason IN (" + ", ".join(f"'{r}'" for r in REASONS) + ")",
            name=op.f('ck_web_sessions_end_reason'),
        ),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_web_sessions_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_web_sessions')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_web_sessions_token_hash')),
    )
    op.create_index(op.f('ix_web_sessions_user_id'), 'web_sessions', ['user_id'], unique=False)
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON web_sessions TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE web_sessions_id_seq TO {APP_ROLE}")


def downgrade() -> None:
    op.drop_index(op.f('ix_web_sessions_user_id'), table_name='web_sessions')
    op.drop_table('web_sessions')
