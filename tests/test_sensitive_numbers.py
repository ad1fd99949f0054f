"""Card and bank numbers in a customer's text are masked to their last four digits."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkpay import sensitive_numbers


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("4242424242424242", "[number removed, ends 4242]"),
        ("my card 4242 4242 4242 4242 exp 12/28", "my card [number removed, ends 4242] exp 12/28"),
        ("4242 4242 4242 4242 12/28 123", "[number removed, ends 4242] 12/28 123"),
        ("4242-4242-4242-4242-12-28", "[number removed, ends 4242]-12-28"),
        ("12 4242 4242 4242 4242", "12 [number removed, ends 4242]"),
        ("4242424242424242 4000056655665556",
         "[number removed, ends 4242] [number removed, ends 5556]"),
        ("378282246310005 1228", "[number removed, ends 0005] 1228"),
        ("4 2 4 2 4 2 4 2 4 2 4 2 4 2 4 2 12/28", "[number removed, ends 4242] 12/28"),
        ("1 " * 800, "[number removed, ends 1111] "),
        ("4000-0566-5566-5556", "[number removed, ends 5556]"),
        ("3782.822463.10005", "[number removed, ends 0005]"),
        ("acct 0001234567890123 routing 110000000",
         "acct [number removed, ends 0123] routing 110000000"),
        ("١٢٣٤٥٦٧٨٩٠١٢٣٤", "[number removed, ends ١٢٣٤]"),
        ("4242424242424241", "[number removed, ends 4241]"),  # fails Luhn: still a card number
        ("a 4242424242424242 and 5555555555554444",
         "a [number removed, ends 4242] and [number removed, ends 4444]"),
    ],
)  # fmt: skip
def test_long_numbers_are_masked_to_their_last_four(text, masked):
    assert sensitive_numbers.mask(text) == masked
    assert sensitive_numbers.contains_one(text)
    assert sensitive_numbers.contains_one(masked)


@pytest.mark.parametrize(
    "text",
    ["PAY 50", "482193", "call me at 602-555-0143", "1-602-555-0143", "PAY $1,234.56",
     "acct 123456789012", "4242 4242 4242", "12/28 123", "4242  4242  4242  4242"],
)  # fmt: skip
def test_what_a_customer_texts_every_day_is_left_alone(text):
    assert sensitive_numbers.mask(text) == text
    assert not sensitive_numbers.contains_one(text)


@given(st.text(alphabet="0123456789 -.x", max_size=200))
def test_nothing_of_13_digits_or_more_survives_masking(text):
    masked = sensitive_numbers.mask(text)
    assert not any(len(run) >= 13 for run in _digit_runs(masked))


def _digit_runs(text: str) -> list[str]:
    """Digits joined across single separators, as the masking reads them."""
    runs, current, gap = [], "", 0
    for c in text:
        if c.isdigit():
            current, gap = current + c, 0
        elif c in " .-" and current and gap == 0:
            gap = 1
        else:
            runs.append(current)
            current, gap = "", 0
    return [*runs, current]
