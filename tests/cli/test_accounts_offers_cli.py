"""``linkpay accounts import`` with the optional settlement-offer columns.

Uses the ``cli`` fixture of tests/cli/conftest.py (the test's app and clock: 2026-03-10 in
Phoenix), since whether a deadline is in the past depends on today."""

from __future__ import annotations

from sqlalchemy import select

from linkpay.cli.links import staff_actor
from linkpay.models import AuditEvent, Offer, OfferStatus

HEADER = (
    "account_number,first_name,last_name,phone,email,balance,due_date,zip,language,"
    "offer_amount,offer_percent,offer_deadline"
)


def write(tmp_path, text: str) -> str:
    path = tmp_path / "accounts.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_import_makes_offers_and_a_second_import_leaves_them_alone(cli, db, tmp_path):
    path = write(
        tmp_path,
        f"{HEADER}\n"
        "A1,Ana,,602-555-0143,,124.50,,,,80.00,,2026-03-20\n"
        "A2,Bob,,602-555-0144,,300,,,,,50,2026-03-20\n"
        "A3,Cy,,602-555-0145,,90,,,,10,10,2026-03-20\n"
        "A4,Di,,602-555-0146,,90,,,,,,\n",
    )
    result = cli("accounts", "import", path)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "created: 3",
        "updated: 0",
        "unchanged: 0",
        "offers made: 2",
        "offers unchanged: 0",
        "rejected: 1",
        "line 4: A3: give offer_amount or offer_percent, not both",
    ]
    again = cli("accounts", "import", path)
    assert again.output.splitlines()[:5] == [
        "created: 0",
        "updated: 0",
        "unchanged: 3",
        "offers made: 0",
        "offers unchanged: 2",
    ]
    offers = db.scalars(select(Offer).order_by(Offer.id)).all()
    assert [(o.amount_cents, o.status) for o in offers] == [
        (8_000, OfferStatus.OFFERED),
        (15_000, OfferStatus.OFFERED),
    ]
    actors = db.scalars(select(AuditEvent.actor).where(AuditEvent.action == "offer.created"))
    assert set(actors) == {staff_actor()}


def test_offer_columns_without_a_deadline_column_refuse_the_file(cli, db, tmp_path):
    path = write(tmp_path, "account_number,phone,balance,offer_percent\nA1,602-555-0143,90,50\n")
    result = cli("accounts", "import", path)
    assert result.exit_code == 1
    assert "Error: missing column offer_deadline (the file has offer_percent)" in result.output
    assert db.scalar(select(Offer.id)) is None
