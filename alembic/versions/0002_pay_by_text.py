"""Pay by Text: saved methods, enrollments with consent, text payment requests, and the
"which account?" questions; payments point at the request they charged (unique); an
index on messages by recipient, for STOP.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 06:34:21.735927
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_recipient", ["to_address", "status"], unique=False)

    op.create_table(
        "text_questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("intent", sa.String(length=20), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("account_ids", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("text_questions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_text_questions_phone"), ["phone"], unique=False)

    op.create_table(
        "saved_methods",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("gateway", sa.String(length=20), nullable=False),
        sa.Column("token", sa.String(length=100), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("card", "bank", name="methodkind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("saved_methods", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_saved_methods_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "text_enrollments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("method_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "awaiting_ok",
                "active",
                "cancelled",
                name="enrollmentstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("consent_version", sa.String(length=20), nullable=False),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consent_ip", sa.String(length=64), nullable=True),
        sa.Column("consent_user_agent", sa.String(length=300), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["method_id"],
            ["saved_methods.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "phone"),
    )
    with op.batch_alter_table("text_enrollments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_text_enrollments_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_text_enrollments_phone"), ["phone"], unique=False)

    op.create_table(
        "text_payment_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enrollment_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("method_id", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("wrong_codes", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "confirmed",
                "expired",
                "cancelled",
                "replaced",
                name="textrequeststatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["text_enrollments.id"],
        ),
        sa.ForeignKeyConstraint(
            ["method_id"],
            ["saved_methods.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("text_payment_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_text_payment_requests_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_text_payment_requests_enrollment_id"), ["enrollment_id"], unique=False
        )
        batch_op.create_index("ix_text_requests_phone_status", ["phone", "status"], unique=False)

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text_request_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("saved_method_id", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint("uq_payments_text_request_id", ["text_request_id"])
        batch_op.create_foreign_key(
            "fk_payments_saved_method_id", "saved_methods", ["saved_method_id"], ["id"]
        )
        batch_op.create_foreign_key(
            "fk_payments_text_request_id", "text_payment_requests", ["text_request_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint("fk_payments_text_request_id", type_="foreignkey")
        batch_op.drop_constraint("fk_payments_saved_method_id", type_="foreignkey")
        batch_op.drop_constraint("uq_payments_text_request_id", type_="unique")
        batch_op.drop_column("saved_method_id")
        batch_op.drop_column("text_request_id")

    with op.batch_alter_table("text_payment_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_text_requests_phone_status")
        batch_op.drop_index(batch_op.f("ix_text_payment_requests_enrollment_id"))
        batch_op.drop_index(batch_op.f("ix_text_payment_requests_account_id"))

    op.drop_table("text_payment_requests")
    with op.batch_alter_table("text_enrollments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_text_enrollments_phone"))
        batch_op.drop_index(batch_op.f("ix_text_enrollments_account_id"))

    op.drop_table("text_enrollments")
    with op.batch_alter_table("saved_methods", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saved_methods_account_id"))

    op.drop_table("saved_methods")
    with op.batch_alter_table("text_questions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_text_questions_phone"))

    op.drop_table("text_questions")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_recipient")
