"""A2A tasks live in the state store, so a restart or another replica answers ``tasks/get``: the table
a2a-sdk's ``DatabaseTaskStore`` reads and writes (``create_table=False``), with exactly the columns of its
``TaskMixin`` (a2a/server/models.py, a2a-sdk 0.3). The mixin's extra index on ``id`` is left out: the primary
key is that index already. A task names its request in ``metadata["request_id"]``.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "a2a_tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("context_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.JSON, nullable=False),
        sa.Column("artifacts", sa.JSON, nullable=True),
        sa.Column("history", sa.JSON, nullable=True),
        sa.Column("metadata", sa.JSON, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("a2a_tasks")
