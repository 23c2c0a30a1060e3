"""users.token_version: tokens die when the password or the active flag changes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:30:00+00:00

Every access token carries the user's token version (`ver`) at the time it was issued; a
request whose token names another version than the user's row is refused. An integer rather
than a "changed at" time, so a token issued in the same second as the change is not confused
with one issued just before it. Existing users start at 0, which is also what a token issued
before this revision (without `ver`) counts as: nobody is signed out by the upgrade itself.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("token_version", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("token_version")
