"""Requests say whether they were withdrawn (their requester took them back): the ``previously-rejected`` rule
and the gap review leave withdrawals out in the query itself, so no number of withdrawals can hide a
reviewer's rejection. Rows from before are not withdrawals (every rejection counted then).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("withdrawn", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("withdrawn")
