"""Requests carry their proposed team as a column, and list pages read by keyset on
(created_at, id): the dashboard's filters and pagination stay indexed at 100,000 requests.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("team", sa.String(64), nullable=True))
    op.create_index("ix_requests_team", "requests", ["team"])
    op.create_index("ix_requests_created_id", "requests", ["created_at", "id"])
    op.create_index("ix_requests_state_created_id", "requests", ["state", "created_at", "id"])
    requests = sa.table("requests", sa.column("id", sa.String), sa.column("payload", sa.JSON), sa.column("team"))
    conn = op.get_bind()
    last = ""
    while True:
        page = sa.select(requests.c.id, requests.c.payload).where(requests.c.id > last)
        rows = conn.execute(page.order_by(requests.c.id).limit(BATCH)).all()
        if not rows:
            break
        for request_id, payload in rows:
            spec = (payload or {}).get("spec") or {}
            if spec.get("name"):
                conn.execute(sa.update(requests).where(requests.c.id == request_id).values(team=spec["name"]))
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_requests_state_created_id", "requests")
    op.drop_index("ix_requests_created_id", "requests")
    op.drop_index("ix_requests_team", "requests")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("team")
