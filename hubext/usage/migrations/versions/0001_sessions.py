"""The sessions table (first schema of the usage ledger).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "hubext_usage_sessions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("server_name", sa.String(255), nullable=False),
        sa.Column("community", sa.String(63), nullable=False),
        sa.Column("profile", sa.String(255), nullable=True),
        sa.Column("choices", sa.JSON, nullable=True),
        sa.Column("cpu_request", sa.Float, nullable=True),
        sa.Column("cpu_limit", sa.Float, nullable=True),
        sa.Column("mem_request", sa.BigInteger, nullable=True),
        sa.Column("mem_limit", sa.BigInteger, nullable=True),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("last_seen_at", sa.DateTime, nullable=False),
        sa.Column("stopped_at", sa.DateTime, nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
    )
    op.create_index(
        "ix_hubext_usage_sessions_started_at",
        "hubext_usage_sessions",
        ["started_at"],
    )


def downgrade():
    op.drop_index("ix_hubext_usage_sessions_started_at", "hubext_usage_sessions")
    op.drop_table("hubext_usage_sessions")
