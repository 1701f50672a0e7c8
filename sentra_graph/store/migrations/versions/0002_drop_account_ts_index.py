"""Drop the (account_id, ts) index on requests.

It tripled the cost of every bulk load (each row lands on a random leaf page) while serving
only analyst reads of a few accounts, which the ts index serves within a window.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_account_ts")


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.create_index("ix_requests_account_ts", ["account_id", "ts"], unique=False)
