"""The audit log's verification checkpoint: the last row a walk of the chain found intact (its seq and
hash), the seq of the ``audit.checkpoint`` row that recorded it in the chain itself, and an HMAC of the
three when a key is configured. `audit --verify` resumes from it; `--full` walks from the first row.

Revision ID: 0012
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("verified_seq", sa.Integer, nullable=False),
        sa.Column("verified_hash", sa.String(64), nullable=False),
        sa.Column("row_seq", sa.Integer, nullable=False),
        sa.Column("mac", sa.String(64), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoint")
