from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkpay.money import MAX_CENTS, format_cents, parse_dollars, plain_dollars


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("1234.56", 123456),
        ("$1,234.56", 123456),
        ("1,234", 123400),
        (" 12.5 ", 1250),
        ("0", 0),
        ("0.00", 0),
        (".50", 50),
        ("$ 50", 5000),
        ("007.10", 710),
        ("1,000,000.01", 100000001),
        ("$10,000,000.00", MAX_CENTS),
        ("\t$3\n", 300),
    ],
)
def test_accepts_amounts_as_people_type_them(text, cents):
    assert parse_dollars(text) == cents


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no amount given"),
        ("   ", "no amount given"),
        ("-5", "cannot be negative"),
        ("$-5.00", "cannot be negative"),
        ("(5.00)", "cannot be negative"),
        ("12.345", "more than two decimal places"),
        ("1e9", "not a dollar amount"),
        ("NaN", "not a dollar amount"),
        ("inf", "not a dollar amount"),
        ("Infinity", "not a dollar amount"),
        ("1_000", "not a dollar amount"),
        ("١٢٣", "not a dollar amount"),  # Arabic-Indic digits
        ("１２", "not a dollar amount"),  # full-width digits
        ("12.", "not a dollar amount"),
        ("$", "not a dollar amount"),
        (".", "not a dollar amount"),
        ("1,23", "not a dollar amount"),
        ("1234,567", "not a dollar amount"),
        ("12 34", "not a dollar amount"),
        ("$$5", "not a dollar amount"),
        ("5$", "not a dollar amount"),
        ("USD 5", "not a dollar amount"),
        ("10000000.01", "over the $10,000,000.00 limit"),
        ("9" * 30, "over the $10,000,000.00 limit"),
        ("9" * 5000, "not a dollar amount"),
    ],
)
def test_refuses_anything_else_with_a_reason(text, reason):
    with pytest.raises(ValueError, match=reason.replace("$", r"\$")):
        parse_dollars(text)


def test_refuses_non_text():
    with pytest.raises(TypeError):
        parse_dollars(12.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "$0.00"),
        (5, "$0.05"),
        (123456, "$1,234.56"),
        (-250, "-$2.50"),
        (10**9, "$10,000,000.00"),
    ],
)
def test_formats_cents_as_us_dollars(cents, text):
    assert format_cents(cents) == text


def test_spanish_uses_the_same_us_dollar_format():
    assert format_cents(123456, language="es") == format_cents(123456) == "$1,234.56"


@pytest.mark.parametrize(("cents", "text"), [(0, "0.00"), (123456, "1234.56"), (-7, "-0.07")])
def test_plain_dollars_has_no_sign_or_separators(cents, text):
    assert plain_dollars(cents) == text


@pytest.mark.parametrize("bad", [1.5, True, "100", None])
def test_formatting_insists_on_integer_cents(bad):
    with pytest.raises(TypeError):
        format_cents(bad)
    with pytest.raises(TypeError):
        plain_dollars(bad)


@given(st.integers(min_value=0, max_value=10**9))
def test_formatted_amounts_parse_back_exactly(cents):
    assert parse_dollars(format_cents(cents)) == cents
    assert parse_dollars(plain_dollars(cents)) == cents


AMOUNTISH = st.text(alphabet="0123456789$,.- eE+_()nafiINF١２\t", max_size=20)


@given(st.one_of(st.text(max_size=50), AMOUNTISH))
def test_any_text_gives_whole_cents_or_a_value_error(text):
    try:
        cents = parse_dollars(text)
    except ValueError as exc:
        assert str(exc)  # a reason a person can read
    else:
        assert type(cents) is int
        assert 0 <= cents <= MAX_CENTS
