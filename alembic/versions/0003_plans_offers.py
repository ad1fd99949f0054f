"""Scheduled payments, settlement and plan offers with their reminders, plans and their
installments; payments point at the installment attempt or scheduled payment they charged.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 06:39:14.873239
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("settlement", "plan", name="offerkind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "offered",
                "accepted",
                "cancelled",
                "expired",
                "replaced",
                name="offerstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=True),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.Column("installment_count", sa.Integer(), nullable=True),
        sa.Column(
            "frequency",
            sa.Enum(
                "weekly", "biweekly", "monthly", name="planfrequency", native_enum=False, length=20
            ),
            nullable=True,
        ),
        sa.Column("first_date", sa.Date(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["links.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("link_id", name="uq_offers_link_id"),
    )
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offers_account_id"), ["account_id"], unique=False)
        batch_op.create_index("ix_offers_open", ["status", "expires_at"], unique=False)

    op.create_table(
        "scheduled_payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("checkout_id", sa.Integer(), nullable=True),
        sa.Column("saved_method_id", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("charge_on", sa.Date(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "processing",
                "paid",
                "declined",
                "cancelled",
                name="scheduledpaymentstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("cancel_reason", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["links.id"],
        ),
        sa.ForeignKeyConstraint(
            ["saved_method_id"],
            ["saved_methods.id"],
        ),
        sa.ForeignKeyConstraint(
            ["checkout_id"], ["checkouts.id"], name="fk_scheduled_payments_checkout_id"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("checkout_id", name="uq_scheduled_payments_checkout_id"),
    )
    with op.batch_alter_table("checkouts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("charge_on", sa.Date(), nullable=True))
    with op.batch_alter_table("scheduled_payments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scheduled_payments_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index("ix_scheduled_payments_due", ["status", "due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_scheduled_payments_link_id"), ["link_id"], unique=False
        )

    op.create_table(
        "offer_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("reminder_index", sa.Integer(), nullable=False),
        sa.Column("hours_before", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sent",
                "dropped",
                "cancelled",
                name="reminderstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["offers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("offer_id", "reminder_index", name="uq_offer_reminders_offer_index"),
    )
    with op.batch_alter_table("offer_reminders", schema=None) as batch_op:
        batch_op.create_index("ix_offer_reminders_due", ["status", "due_at"], unique=False)

    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("saved_method_id", sa.Integer(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column(
            "frequency",
            sa.Enum(
                "weekly", "biweekly", "monthly", name="planfrequency", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "active", "completed", "cancelled", name="planstatus", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("signature_name", sa.String(length=200), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_ip", sa.String(length=64), nullable=True),
        sa.Column("signed_user_agent", sa.String(length=300), nullable=True),
        sa.Column("agreement_version", sa.String(length=40), nullable=False),
        sa.Column("agreement_text", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=100), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["offers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["saved_method_id"],
            ["saved_methods.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("offer_id", name="uq_plans_offer_id"),
    )
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plans_account_id"), ["account_id"], unique=False)

    op.create_table(
        "installments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("charge_on", sa.Date(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "processing",
                "retry_scheduled",
                "paid",
                "declined",
                "cancelled",
                name="installmentstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("decline_code", sa.String(length=40), nullable=True),
        sa.Column("cancel_reason", sa.String(length=40), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "sequence", name="uq_installments_plan_sequence"),
    )
    with op.batch_alter_table("installments", schema=None) as batch_op:
        batch_op.create_index("ix_installments_due", ["status", "due_at"], unique=False)

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("installment_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("installment_attempt", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("scheduled_payment_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_payments_installment_id"), ["installment_id"], unique=False
        )
        batch_op.create_unique_constraint(
            "uq_payments_installment_attempt", ["installment_id", "installment_attempt"]
        )
        batch_op.create_unique_constraint(
            "uq_payments_scheduled_payment_id", ["scheduled_payment_id"]
        )
        batch_op.create_foreign_key(
            "fk_payments_scheduled_payment_id",
            "scheduled_payments",
            ["scheduled_payment_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            "fk_payments_installment_id", "installments", ["installment_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint("fk_payments_installment_id", type_="foreignkey")
        batch_op.drop_constraint("fk_payments_scheduled_payment_id", type_="foreignkey")
        batch_op.drop_constraint("uq_payments_scheduled_payment_id", type_="unique")
        batch_op.drop_constraint("uq_payments_installment_attempt", type_="unique")
        batch_op.drop_index(batch_op.f("ix_payments_installment_id"))
        batch_op.drop_column("scheduled_payment_id")
        batch_op.drop_column("installment_attempt")
        batch_op.drop_column("installment_id")

    with op.batch_alter_table("installments", schema=None) as batch_op:
        batch_op.drop_index("ix_installments_due")

    op.drop_table("installments")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plans_account_id"))

    op.drop_table("plans")
    with op.batch_alter_table("offer_reminders", schema=None) as batch_op:
        batch_op.drop_index("ix_offer_reminders_due")

    op.drop_table("offer_reminders")
    with op.batch_alter_table("checkouts", schema=None) as batch_op:
        batch_op.drop_column("charge_on")
    with op.batch_alter_table("scheduled_payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduled_payments_link_id"))
        batch_op.drop_index("ix_scheduled_payments_due")
        batch_op.drop_index(batch_op.f("ix_scheduled_payments_account_id"))

    op.drop_table("scheduled_payments")
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_index("ix_offers_open")
        batch_op.drop_index(batch_op.f("ix_offers_account_id"))

    op.drop_table("offers")
