"""Invitations, their redemptions and the memberships they give (#23).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "hubext_invitations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("community", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("note", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("max_uses", sa.Integer, nullable=False),
        sa.Column("uses", sa.Integer, nullable=False),
        sa.Column("membership_ends_at", sa.DateTime, nullable=True),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
        sa.Column("revoked_by", sa.String(255), nullable=True),
    )
    op.create_index(
        "ix_hubext_invitations_community", "hubext_invitations", ["community"]
    )
    op.create_table(
        "hubext_redemptions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
        ),
        sa.Column(
            "invitation_id",
            sa.Integer,
            sa.ForeignKey("hubext_invitations.id"),
            nullable=True,
        ),
        sa.Column("community", sa.String(63), nullable=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("provider", sa.String(255), nullable=True),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("result", sa.String(32), nullable=False),
    )
    op.create_index(
        "ix_hubext_redemptions_invitation", "hubext_redemptions", ["invitation_id"]
    )
    op.create_table(
        "hubext_memberships",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("community", sa.String(63), nullable=False),
        sa.Column(
            "invitation_id",
            sa.Integer,
            sa.ForeignKey("hubext_invitations.id"),
            nullable=False,
        ),
        sa.Column("provider", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("granted_at", sa.DateTime, nullable=False),
        sa.Column("ends_at", sa.DateTime, nullable=True),
        sa.Column("ended_at", sa.DateTime, nullable=True),
        sa.Column("removed_by", sa.String(255), nullable=True),
        sa.Column("applied_at", sa.DateTime, nullable=True),
    )
    op.create_index(
        "ix_hubext_memberships_user", "hubext_memberships", ["username", "community"]
    )
    op.create_index(
        "ix_hubext_memberships_community", "hubext_memberships", ["community"]
    )


def downgrade():
    op.drop_index("ix_hubext_memberships_community", "hubext_memberships")
    op.drop_index("ix_hubext_memberships_user", "hubext_memberships")
    op.drop_table("hubext_memberships")
    op.drop_index("ix_hubext_redemptions_invitation", "hubext_redemptions")
    op.drop_table("hubext_redemptions")
    op.drop_index("ix_hubext_invitations_community", "hubext_invitations")
    op.drop_table("hubext_invitations")
