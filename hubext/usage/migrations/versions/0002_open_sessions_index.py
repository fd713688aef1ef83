"""Index for open sessions and for windows ending late.

``(stopped_at, started_at)``: finding open sessions at hub start-up
(``stopped_at IS NULL``) and the sessions of a report window
(``stopped_at > from AND started_at < to``) without scanning the table, which
``started_at`` alone cannot do for a window near the end of a long history.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_hubext_usage_sessions_stopped_started",
        "hubext_usage_sessions",
        ["stopped_at", "started_at"],
    )


def downgrade():
    op.drop_index("ix_hubext_usage_sessions_stopped_started", "hubext_usage_sessions")
