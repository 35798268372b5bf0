"""run kinds named after their features: `audit` becomes `memorisation`, `evaluate` becomes `evaluation`

One word per feature from route to table: the memorisation audit's rows were already `memorisation_checks`
and the evaluation's output already `outputs.evaluation`. Stored runs, the memorisation summary in their
outputs and the queued jobs (procrastinate's task name is the kind) are renamed with them, so a run queued
before the upgrade is still taken by a worker after it. Stop the workers first: an old worker fails a job
whose task it does not know, and so does a new one for a job not yet renamed. The downgrade renames them
back.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 09:00:00
"""

from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

RENAMES = (("audit", "memorisation"), ("evaluate", "evaluation"))


def _rename(old: str, new: str) -> None:
    op.execute(f"UPDATE runs SET kind = '{new}' WHERE kind = '{old}'")
    op.execute(f"UPDATE procrastinate_jobs SET task_name = '{new}' WHERE task_name = '{old}'")


def _move_summary(old: str, new: str) -> None:
    # Only the memorisation run stored its summary under its kind's name (the evaluation's key is unchanged);
    # both directions run while the kind reads `memorisation`.
    op.execute(
        f"UPDATE runs SET outputs = (outputs - '{old}') || jsonb_build_object('{new}', outputs -> '{old}') "
        f"WHERE kind = 'memorisation' AND outputs ? '{old}'"
    )


def upgrade() -> None:
    for old, new in RENAMES:
        _rename(old, new)
    _move_summary("audit", "memorisation")


def downgrade() -> None:
    _move_summary("memorisation", "audit")
    for old, new in RENAMES:
        _rename(new, old)
