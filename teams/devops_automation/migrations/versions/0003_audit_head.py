"""The audit chain's head (last seq and hash), written in the same transaction as each row, so rows cut
off the end of the log show up in `audit --verify`.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    # Logs written before this revision: anchor them at their current end.
    op.execute(
        "INSERT INTO audit_head (id, seq, hash) SELECT 1, seq, hash FROM audit_log "
        "WHERE seq = (SELECT max(seq) FROM audit_log)"
    )


def downgrade() -> None:
    op.drop_table("audit_head")
