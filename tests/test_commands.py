"""Every row of contract §5, in both languages, and no input that crashes the parser."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkpay.commands import MAX_BODY, Kind, parse_sms

STOP_WORDS = [
    "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT",
    "PARAR", "ALTO", "CANCELAR", "BAJA", "NO MAS",
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "kind", "amount", "code", "language"),
    [
        ("PAY", Kind.PAY, None, None, "en"),
        ("pay", Kind.PAY, None, None, "en"),
        ("PAGAR", Kind.PAY, None, None, "es"),
        ("Pagar", Kind.PAY, None, None, "es"),
        ("PAY 50", Kind.PAY, 5000, None, "en"),
        ("PAY $1,234.56", Kind.PAY, 123456, None, "en"),
        ("pagar 50", Kind.PAY, 5000, None, "es"),
        ("  PAY   50.5 ", Kind.PAY, 5050, None, "en"),
        ("YES 482193", Kind.CONFIRM, None, "482193", "en"),
        ("SI 482193", Kind.CONFIRM, None, "482193", "es"),
        ("Sí 482193", Kind.CONFIRM, None, "482193", "es"),
        ("482193", Kind.CONFIRM, None, "482193", None),
        (" 482193 ", Kind.CONFIRM, None, "482193", None),
        ("OK", Kind.ACTIVATE, None, None, None),
        ("ok", Kind.ACTIVATE, None, None, None),
        ("BAL", Kind.BALANCE, None, None, "en"),
        ("SALDO", Kind.BALANCE, None, None, "es"),
        ("LINK", Kind.LINK, None, None, "en"),
        ("ENLACE", Kind.LINK, None, None, "es"),
        ("HELP", Kind.HELP, None, None, "en"),
        ("INFO", Kind.HELP, None, None, "en"),
        ("AYUDA", Kind.HELP, None, None, "es"),
        ("START", Kind.START, None, None, "en"),
        ("UNSTOP", Kind.START, None, None, "en"),
        ("COMENZAR", Kind.START, None, None, "es"),
        ("hello there", Kind.UNKNOWN, None, None, None),
        ("4821", Kind.SELECT_ACCOUNT, None, None, None),
        ("4242 4242 4242 4242", Kind.SENSITIVE_NUMBER, None, None, None),
        ("PAY 4242424242424242", Kind.SENSITIVE_NUMBER, None, None, None),
        ("[number removed, ends 4242]", Kind.SENSITIVE_NUMBER, None, None, None),
    ],
)
def test_contract_table(body, kind, amount, code, language):
    command = parse_sms(body)
    assert command.kind == kind
    assert command.amount_cents == amount
    assert command.code == code
    assert command.language == language


@pytest.mark.parametrize("word", STOP_WORDS)
def test_every_stop_word_in_any_case_and_with_accents_opts_out(word):
    assert parse_sms(word).kind == Kind.STOP
    assert parse_sms(f"  {word.lower()} ").kind == Kind.STOP
    assert parse_sms("No más").kind == Kind.STOP


@pytest.mark.parametrize(
    "body",
    ["PAY 1e9", "PAY NaN", "PAY 1_000", "PAY 0.001", "PAY -5", "PAY 0", "PAY 0.00",
     "PAY ١٢", "PAY １２", "PAY 💵", "PAY fifty", "PAGAR 5,0000"],
)  # fmt: skip
def test_malformed_amounts_are_refused_with_a_reason(body):
    command = parse_sms(body)
    assert command.kind == Kind.BAD_AMOUNT
    assert command.error


@pytest.mark.parametrize(
    "body", ["x" * 1600, "PAY " + "9" * 1600, "🙂", "", "YES 12345", "1234567"]
)
def test_anything_else_is_unknown(body):
    assert parse_sms(body).kind == Kind.UNKNOWN


def test_full_width_code_is_not_read_as_a_code():
    assert parse_sms("４８２１９３").kind == Kind.UNKNOWN


@given(st.text(max_size=MAX_BODY + 50))
def test_no_input_crashes_and_amounts_are_positive_whole_cents(body):
    command = parse_sms(body)
    assert isinstance(command.kind, Kind)
    if command.amount_cents is not None:
        assert type(command.amount_cents) is int and command.amount_cents > 0
    if command.code is not None:
        assert len(command.code) == 6 and command.code.isascii() and command.code.isdigit()


@given(st.integers(min_value=1, max_value=10**9))
def test_any_positive_amount_written_as_dollars_reads_back(cents):
    dollars = f"${cents // 100:,}.{cents % 100:02d}"
    assert parse_sms(f"PAY {dollars}").amount_cents == cents
