"""Move template ids out of ``requests`` into the narrow ``request_templates`` table.

Assigning the templates of a backlog rewrote every ``requests`` row (an UPDATE of a wide row,
its indexes and WAL: 21 s per million requests measured); appending ``(ts, request_id,
template_id)`` rows by COPY costs a few seconds and leaves ``requests`` append-only.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_templates",
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "request_id",
            sa.Text().with_variant(sa.Text(collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("ts", "request_id"),
    )
    op.execute(
        "INSERT INTO request_templates (ts, request_id, template_id) "
        "SELECT ts, request_id, template_id FROM requests WHERE template_id IS NOT NULL"
    )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("template_id")


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE requests SET template_id = (SELECT s.template_id FROM request_templates s "
        "WHERE s.ts = requests.ts AND s.request_id = requests.request_id)"
    )
    op.drop_table("request_templates")
