"""agent fields: reply text, threads, category, sender authentication, nested attachments

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 01:00:00+00:00

`threads` are conversations; `thread_keys` maps every Message-ID a stored message carries or
names (its own, In-Reply-To, References) to its thread. An email finds its current thread
through its own key (`emails.thread_key`), so merging two threads rewrites `thread_keys` only
and can never miss an email committed a moment later. Attachments found inside forwarded
messages and winmail.dat point at the attachment they came out of.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "threads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("merged_into", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_threads")),
    )
    op.create_index(op.f("ix_threads_merged_into"), "threads", ["merged_into"])
    op.create_table(
        "thread_keys",
        sa.Column("key", sa.String(length=600), nullable=False),
        sa.Column("thread_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_thread_keys")),
    )
    op.create_index(op.f("ix_thread_keys_thread_id"), "thread_keys", ["thread_id"])
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("thread_key", sa.String(length=600), nullable=True))
        batch_op.add_column(sa.Column("category", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("bounce_recipient", sa.String(length=998), nullable=True))
        batch_op.add_column(sa.Column("bounce_status", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("bounce_action", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("bounce_diagnostic", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("sender_authenticated", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("sender_auth_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("dmarc_result", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "authentication_results",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.create_index(batch_op.f("ix_emails_thread_key"), ["thread_key"])
        batch_op.create_index(batch_op.f("ix_emails_category"), ["category"])
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("source_subject", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("source_from", sa.String(length=998), nullable=True))
        batch_op.create_index(batch_op.f("ix_attachments_parent_id"), ["parent_id"])


def downgrade() -> None:
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachments_parent_id"))
        batch_op.drop_column("source_from")
        batch_op.drop_column("source_subject")
        batch_op.drop_column("parent_id")
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_emails_category"))
        batch_op.drop_index(batch_op.f("ix_emails_thread_key"))
        for column in (
            "authentication_results",
            "dmarc_result",
            "sender_auth_reason",
            "sender_authenticated",
            "bounce_diagnostic",
            "bounce_action",
            "bounce_status",
            "bounce_recipient",
            "category",
            "thread_key",
            "reply_text",
        ):
            batch_op.drop_column(column)
    op.drop_index(op.f("ix_thread_keys_thread_id"), table_name="thread_keys")
    op.drop_table("thread_keys")
    op.drop_index(op.f("ix_threads_merged_into"), table_name="threads")
    op.drop_table("threads")
