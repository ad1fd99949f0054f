from linkpay.signing import Purpose, Signer


def test_token_round_trips_and_is_short_enough_for_one_sms_segment():
    signer = Signer("k1")
    token = signer.sign(Purpose.PAY_LINK, 12_345_678)
    assert len(token) <= 42
    assert signer.verify(Purpose.PAY_LINK, token, 3600).subject_id == 12_345_678


def test_tampered_token_and_other_purpose_are_rejected():
    signer = Signer("k1")
    token = signer.sign(Purpose.PAY_LINK, 7)
    # The last base64 character of a 16-byte signature carries padding bits; change one
    # that carries signature bits.
    tampered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    assert signer.verify(Purpose.PAY_LINK, tampered, 3600).subject_id is None
    assert signer.verify(Purpose.RECEIPT, token, 3600).subject_id is None
    assert Signer("other").verify(Purpose.PAY_LINK, token, 3600).subject_id is None


def test_expired_token_keeps_its_id_so_a_fresh_link_can_be_offered():
    signer = Signer("k1")
    verified = signer.verify(Purpose.PAY_LINK, signer.sign(Purpose.PAY_LINK, 9), -1)
    assert verified.expired and verified.subject_id == 9 and not verified.valid


def test_rotated_key_still_accepts_tokens_signed_with_the_previous_one():
    old = Signer("old").sign(Purpose.PAY_LINK, 5)
    assert Signer("new", ["old"]).verify(Purpose.PAY_LINK, old, 3600).subject_id == 5


def test_unsubscribe_tokens_never_expire_and_are_the_same_every_time():
    signer = Signer("k1")
    token = signer.sign(Purpose.UNSUBSCRIBE, 42)
    assert signer.sign(Purpose.UNSUBSCRIBE, 42) == token
    assert signer.verify(Purpose.UNSUBSCRIBE, token, -1).subject_id == 42
    assert signer.verify(Purpose.PAY_LINK, token, None).subject_id is None


def test_tokens_are_dated_and_aged_by_the_services_clock():
    import datetime as dt

    now = [dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)]
    signer = Signer("k1")
    signer.use_clock(lambda: now[0])
    token = signer.sign(Purpose.PAY_LINK, 11)
    assert signer.sign(Purpose.PAY_LINK, 11) == token  # same second, same token
    now[0] += dt.timedelta(seconds=3599)
    assert signer.verify(Purpose.PAY_LINK, token, 3600).valid
    now[0] += dt.timedelta(seconds=2)
    assert signer.verify(Purpose.PAY_LINK, token, 3600).expired
