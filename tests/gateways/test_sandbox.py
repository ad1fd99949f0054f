"""The sandbox gateway (contract §4) and its tokenizer: outcomes by number, idempotent
charges, settlement, the checks on what the customer typed, and the signed round trip."""

from __future__ import annotations

import time

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from linkpay.gateways import ChargeStatus, GatewayError, gateway
from linkpay.gateways.sandbox import RETURN_SALT, card_brand, read_return, sign_return
from linkpay.gateways.sandbox_tokenizer import check_bank, check_card, expiry_ok
from linkpay.models import MethodKind, SandboxToken
from linkpay.runtime import runtime
from tests.web.pay_flow import query

RETURN_PATH = "/p/MQ.abc.def/review"


def tokenize(client, return_to: str | None = None, **fields):
    data = {"return_to": return_to or sign_return("chk_1", RETURN_PATH), **fields}
    return client.post("/sandbox-gateway/tokenize", data=data)


def card(client, number: str, **overrides):
    fields = {"kind": "card", "number": number, "expiry": "12/30", "cvc": "123", "name": "Ana"}
    return tokenize(client, **{**fields, **overrides})


def token_from(response) -> str:
    assert response.status_code == 303, response.status_code
    return query(response.headers["Location"])["pm"]


@pytest.mark.parametrize(
    ("number", "status", "code"),
    [
        ("4242 4242 4242 4242", ChargeStatus.APPROVED, None),
        ("4000 0000 0000 0002", ChargeStatus.DECLINED, "declined"),
        ("4000 0000 0000 9995", ChargeStatus.DECLINED, "insufficient_funds"),
        ("5555-5555-5555-4444", ChargeStatus.APPROVED, None),  # any other valid card
    ],
)
def test_card_outcomes_follow_the_contract(client, number, status, code):
    result = gateway().charge(token_from(card(client, number)), 1_000, "key-1")
    assert (result.status, result.decline_code) == (status, code)
    assert result.reference


@pytest.mark.parametrize(
    ("account", "status"),
    [("000123456789", ChargeStatus.PENDING), ("000111111116", ChargeStatus.DECLINED)],
)
def test_bank_outcomes_follow_the_contract(client, account, status):
    response = tokenize(client, kind="bank", routing="110000000", account=account)
    assert gateway().charge(token_from(response), 1_000, "key-1").status == status


def test_a_pending_debit_settles_when_asked_about(client):
    bank = tokenize(client, kind="bank", routing="110000000", account="000123456789")
    pending = gateway().charge(token_from(bank), 1_000, "key-1")
    assert gateway().check(pending.reference).status == ChargeStatus.APPROVED
    refused = tokenize(client, kind="bank", routing="110000000", account="000111111116")
    declined = gateway().charge(token_from(refused), 1_000, "key-2")
    assert gateway().check(declined.reference).status == ChargeStatus.DECLINED
    with pytest.raises(GatewayError):
        gateway().check("ch_unknown.tok_nobody")


def test_charges_are_idempotent_by_key(client):
    token = token_from(card(client, "4242424242424242"))
    first = gateway().charge(token, 1_000, "checkout-abc")
    again = gateway().charge(token, 1_000, "checkout-abc")
    other = gateway().charge(token, 1_000, "checkout-xyz")
    assert first == again and first.reference != other.reference


def test_an_unknown_token_is_declined_and_amounts_must_be_positive_cents(client):
    assert gateway().charge("tok_nobody", 1_000, "k").decline_code == "unknown_method"
    token = token_from(card(client, "4242424242424242"))
    with pytest.raises(ValueError):
        gateway().charge(token, 0, "k")
    with pytest.raises(TypeError):
        gateway().charge(token, 10.5, "k")


def test_the_vault_keeps_brand_last_four_and_outcome_only(client, db):
    token = token_from(card(client, "4000 0000 0000 9995"))
    row = db.scalar(select(SandboxToken).where(SandboxToken.token == token))
    assert (row.kind, row.label, row.last4, row.outcome) == (
        MethodKind.CARD,
        "Visa",
        "9995",
        "insufficient_funds",
    )
    method = gateway().describe(token)
    assert (method.kind, method.label, method.last4) == (MethodKind.CARD, "Visa", "9995")
    assert gateway().describe("tok_nobody") is None


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", "Visa"),
        ("5555555555554444", "Mastercard"),
        ("2223003122003222", "Mastercard"),
        ("378282246310005", "American Express"),
        ("6011111111111117", "Discover"),
        ("3056930009020004", "Card"),
    ],
)
def test_card_brands(number, brand):
    assert card_brand(number) == brand


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"number": "4242424242424241"}, ["card_number"]),  # fails Luhn
        ({"number": "4242 4242 4242 424x"}, ["card_number"]),
        ({"number": "42424242"}, ["card_number"]),
        ({"expiry": "02/26"}, ["expiry"]),  # the clock says March 2026
        ({"expiry": "13/30"}, ["expiry"]),
        ({"expiry": "12/99"}, ["expiry"]),
        ({"cvc": "12"}, ["cvc"]),
        ({"cvc": "12345"}, ["cvc"]),
        ({"name": "   "}, ["name"]),
    ],
)
def test_card_checks(app, fields, errors):
    good = {"number": "4242424242424242", "expiry": "03/26", "cvc": "1234", "name": "Ana"}
    found, method = check_card({**good, **fields})
    assert found == errors and method is None


def test_expiry_formats(app):
    assert all(expiry_ok(text) for text in ("03/26", "3/26", "03 / 2026", "0326", "12/45"))
    assert not any(expiry_ok(text) for text in ("", "02/26", "3-26", "00/30", "12/2047"))


@pytest.mark.parametrize(
    ("routing", "account", "errors"),
    [
        ("110000001", "000123456789", ["routing"]),  # fails the ABA checksum
        ("11000000", "000123456789", ["routing"]),
        ("110000000", "123", ["account"]),
        ("110000000", "1" * 18, ["account"]),
        ("", "", ["routing", "account"]),
    ],
)
def test_bank_checks(routing, account, errors):
    found, method = check_bank({"routing": routing, "account": account})
    assert found == errors and method is None


def test_the_tokenizer_never_echoes_the_number(client, db):
    response = card(client, "4242 4242 4242 4241", cvc="9")
    location = response.headers["Location"]
    assert location.startswith(RETURN_PATH + "?")
    assert query(location) == {"c": "chk_1", "kind": "card", "errors": "card_number,cvc"}
    assert "4241" not in location and "4241" not in response.get_data(as_text=True)
    assert db.scalar(select(SandboxToken)) is None
    bank = tokenize(client, kind="bank", routing="110000001", account="000123456789")
    bank_location = bank.headers["Location"]
    assert "000123456789" not in bank_location and "110000001" not in bank_location


def test_the_tokenizer_needs_no_csrf_token_but_a_signed_return(client):
    assert card(client, "4242424242424242").status_code == 303  # no csrf_token sent
    forged = tokenize(client, return_to="anything", kind="card", number="4242424242424242")
    assert forged.status_code == 303
    assert forged.headers["Location"].endswith("/sandbox-gateway/expired")
    page = client.get(forged.headers["Location"])
    assert page.status_code == 400 and "This page has expired" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    ["https://evil.example/p/x/review", "//evil.example/p/x/review", "/outbox", "/p/x/review?x=1"],
)
def test_return_to_only_names_linkpay_payment_pages(app, client, path):
    with pytest.raises(ValueError):
        sign_return("chk_1", path)
    forged = URLSafeTimedSerializer(runtime().signer.keys, salt=RETURN_SALT).dumps(["chk_1", path])
    assert read_return(forged) is None
    response = tokenize(client, return_to=forged, kind="card", number="4242424242424242")
    assert response.headers["Location"].endswith("/sandbox-gateway/expired")


def test_a_stale_return_to_is_refused(app, monkeypatch):
    value = sign_return("chk_1", RETURN_PATH)
    assert read_return(value) == ("chk_1", RETURN_PATH)
    later = time.time() + 3601
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)
    assert read_return(value) is None


def test_another_apps_signature_is_refused(app):
    other = URLSafeTimedSerializer("some-other-secret", salt=RETURN_SALT)
    assert read_return(other.dumps(["chk_1", RETURN_PATH])) is None
