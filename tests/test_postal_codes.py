"""US ZIP codes and Canadian postal codes, as imported and as typed on the payment page."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkpay import postal_codes
from linkpay.quiet_hours import zone_for_zip


@pytest.mark.parametrize(
    ("typed", "stored", "key"),
    [
        ("85004", "85004", "85004"),
        (" 85004-1234 ", "85004-1234", "85004"),
        ("850041234", "85004-1234", "85004"),
        ("K1A 0B1", "K1A 0B1", "K1A0B1"),
        ("k1a0b1", "K1A 0B1", "K1A0B1"),
        ("v6b 4y8", "V6B 4Y8", "V6B4Y8"),
    ],
)
def test_zip_codes_and_postal_codes_are_read_in_their_common_forms(typed, stored, key):
    assert postal_codes.normalize(typed) == stored
    assert postal_codes.match_key(typed) == key


@pytest.mark.parametrize(
    "typed",
    ["", "8500", "85004-12", "D1A 0B1", "K1A-0B1", "W1A 0B1", "K1A 0B", "１２３４５", "K1A  0B1"],
)
def test_anything_else_is_refused(typed):
    assert postal_codes.normalize(typed) is None
    assert postal_codes.match_key(typed) is None


@pytest.mark.parametrize(
    ("code", "zone"),
    [
        ("K1A 0B1", "America/Toronto"),
        ("V6B 4Y8", "America/Vancouver"),
        ("T5J 0N3", "America/Edmonton"),
        ("A1C 5M2", "America/St_Johns"),
        ("85004", "America/Phoenix"),
    ],
)
def test_the_zone_comes_from_a_postal_code_as_from_a_zip(code, zone):
    assert zone_for_zip(code) == zone


@given(st.text(max_size=12))
def test_a_stored_code_always_reads_back_as_itself(text):
    stored = postal_codes.normalize(text)
    if stored is not None:
        assert postal_codes.normalize(stored) == stored
        assert postal_codes.match_key(stored) == postal_codes.match_key(text)
