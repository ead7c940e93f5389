"""Notifications get an outbox written with each state change and one delivery row per channel (sent once,
retried with backoff); the scheduled gap review gets its unassigned-task table, its sightings and a lease
so one replica runs it at a time; requests carry a key of their skills, so a reworded gap for the same
skills finds an earlier rejection by an indexed query.

Revision ID: 0007
Revises: 0006
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BATCH = 1000
TZ = sa.DateTime(timezone=True)


def _skills_key(skills: list[str]) -> str | None:  # models.skills_key as of this revision
    names = sorted({" ".join(str(s).lower().split()) for s in skills if str(s).strip()})
    return hashlib.sha256("|".join(names).encode()).hexdigest() if names else None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("request_id", sa.String(40), nullable=True, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False, index=True),
        sa.Column("payload", sa.JSON, nullable=False),
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("notification_id", sa.String(40), primary_key=True),
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_deliveries_due", "notification_deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "unassigned_tasks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("skills", sa.JSON, nullable=False),
        sa.Column("urgency", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("request_id", sa.String(40), nullable=True),
        sa.Column("team", sa.String(64), nullable=True),
    )
    op.create_index("ix_unassigned_open", "unassigned_tasks", ["request_id", "team", "created_at"])
    op.create_table(
        "gap_sightings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("first_seen", TZ, nullable=False),
        sa.Column("last_seen", TZ, nullable=False),
        sa.Column("times_seen", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(40), nullable=True),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
    )
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("skills_key", sa.String(64), nullable=True))
    op.create_index("ix_requests_skills_key", "requests", ["skills_key"])
    requests = sa.table("requests", sa.column("id", sa.String), sa.column("payload", sa.JSON), sa.column("skills_key"))
    conn = op.get_bind()
    last = ""
    while True:
        page = sa.select(requests.c.id, requests.c.payload).where(requests.c.id > last)
        rows = conn.execute(page.order_by(requests.c.id).limit(BATCH)).all()
        if not rows:
            break
        for request_id, payload in rows:
            key = _skills_key(((payload or {}).get("gap") or {}).get("required_skills") or [])
            if key:
                conn.execute(sa.update(requests).where(requests.c.id == request_id).values(skills_key=key))
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_requests_skills_key", "requests")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("skills_key")
    op.drop_table("leases")
    op.drop_table("gap_sightings")
    op.drop_index("ix_unassigned_open", "unassigned_tasks")
    op.drop_table("unassigned_tasks")
    op.drop_index("ix_deliveries_due", "notification_deliveries")
    op.drop_table("notification_deliveries")
    op.drop_table("notifications")
