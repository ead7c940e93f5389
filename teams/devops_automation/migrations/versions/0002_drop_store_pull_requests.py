"""Pull requests live on the forge (GitHub or the embedded local forge), not in the state store.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("pull_requests")


def downgrade() -> None:
    op.create_table(
        "pull_requests",
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("repo", sa.String(140), nullable=False),
        sa.Column("head", sa.String(255), nullable=False),
        sa.Column("base", sa.String(255), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("merged", sa.Boolean, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=True),
        sa.UniqueConstraint("repo", "head", name="uq_pull_requests_head"),
    )
