from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from linkpay import csvfile
from linkpay.models import Account
from linkpay.runtime import runtime
from linkpay.services.accounts_import import (
    ImportFileError,
    escape_formula,
    export_accounts,
    import_accounts,
)

HEADER = "account_number,first_name,last_name,phone,email,balance,due_date,zip,language"


def run(db, text: str | bytes, **kwargs):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return import_accounts(db, io.BytesIO(data), **kwargs)


def csv_text(*lines: str, header: str = HEADER, eol: str = "\n") -> str:
    return eol.join((header, *lines)) + eol


def account(db, number: str) -> Account | None:
    db.expire_all()
    return db.scalar(select(Account).where(Account.account_number == number))


def account_count(db) -> int:
    return db.scalar(select(func.count()).select_from(Account))


def reasons(result) -> list[tuple[int, str, str]]:
    return [(r.line, r.account_number, r.reason) for r in result.rejected]


def test_creates_accounts_with_normalized_values(db):
    result = run(
        db,
        csv_text(
            'A-100,Ana,Muñoz,(602) 555-0143,Ana@Example.COM,"$1,234.56",2026-04-01,85001,es',
            "A-101,Bob,Lee,,bob@example.com,12.5,,85001-1234,",
        ),
    )
    assert (result.created, result.updated, result.rejected) == (2, 0, [])
    ana = account(db, "A-100")
    assert (ana.first_name, ana.last_name, ana.phone, ana.email) == (
        "Ana",
        "Muñoz",
        "+16025550143",
        "Ana@example.com",
    )
    assert (ana.balance_cents, ana.due_date, ana.zip, ana.language) == (
        123456,
        dt.date(2026, 4, 1),
        "85001",
        "es",
    )
    bob = account(db, "A-101")
    assert (bob.phone, bob.balance_cents, bob.due_date, bob.zip, bob.language) == (
        None,
        1250,
        None,
        "85001-1234",
        "en",
    )


def test_header_names_are_trimmed_and_case_insensitive_and_extras_are_reported(db):
    text = " Account_Number ,BALANCE,Phone,Notes,,internal id\nA1,5,602-555-0143,hello,x,9\n"
    result = run(db, text)
    assert result.created == 1
    assert result.ignored_columns == ["Notes", "internal id"]
    assert account(db, "A1").balance_cents == 500


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("first_name,balance,phone", "account_number"),
        ("account_number,phone,email", "balance"),
        ("account_number,balance,first_name", "phone or email"),
        ("id,amount,mobile", "account_number, balance, phone or email"),
    ],
)
def test_a_missing_required_column_rejects_the_file_before_writing(db, header, missing):
    rows = "\n".join(f"A{n},{n},602-555-0143" for n in range(1, 2500))
    with pytest.raises(ImportFileError, match=f"missing required column\\(s\\): {missing} "):
        run(db, f"{header}\n{rows}\n", batch_size=10)
    assert account_count(db) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"\n\r\n  \n", "the file is empty"),
        (b"account_number,balance,phone,Phone\n", "column 'phone' appears more than once"),
        (HEADER.encode("utf-16"), "UTF-16"),
    ],
)
def test_unusable_files_are_refused_as_a_whole(db, data, message):
    with pytest.raises(ImportFileError, match=message):
        run(db, data)


def test_a_path_is_accepted_and_a_missing_one_is_a_clear_error(db, tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_text(csv_text("A1,,,602-555-0143,,1,,,"))
    assert import_accounts(db, path).created == 1
    assert import_accounts(db, str(path)).unchanged == 1
    with pytest.raises(ImportFileError, match="cannot read .*nope.csv: No such file"):
        import_accounts(db, tmp_path / "nope.csv")


def test_a_text_stream_is_a_programming_error(db):
    with pytest.raises(TypeError, match="binary stream"):
        import_accounts(db, io.StringIO(csv_text()))


def test_utf8_byte_order_mark_is_dropped(db):
    result = run(db, b"\xef\xbb\xbf" + csv_text("A1,Zoë,,602-555-0143,,1,,,").encode())
    assert result.created == 1 and account(db, "A1").first_name == "Zoë"


@pytest.mark.parametrize("eol", ["\r\n", "\n", "\r"])
def test_line_endings_of_every_platform(db, eol):
    text = csv_text(
        "A1,Ana,,602-555-0143,,1,,,", "A2,,,bad,,1,,,", "A3,,,,a@example.com,1,,,", eol=eol
    )
    result = run(db, text)
    assert result.created == 2
    assert reasons(result) == [(3, "A2", "phone 'bad' is not a phone number")]
    assert account(db, "A1").first_name == "Ana"


def test_windows_1252_files_are_read(db):
    text = csv_text("A1,José,Muñoz,602-555-0143,,1,,,", "A2,Ana,Peña €,602-555-0143,,1,,,")
    result = run(db, text.encode("cp1252"))
    assert result.created == 2
    assert account(db, "A1").last_name == "Muñoz"
    assert account(db, "A2").last_name == "Peña €"


def test_a_legacy_line_deep_inside_a_utf8_file_is_still_read(db):
    good = [f"A{n},Zoë,,602-555-0143,,1,,," for n in range(3000)]  # well past one read chunk
    data = csv_text(*good).encode() + "B1,José,Muñoz,602-555-0143,,1,,,\n".encode("cp1252")
    result = run(db, data)
    assert result.created == 3001
    assert account(db, "A2999").first_name == "Zoë"
    assert account(db, "B1").last_name == "Muñoz"


def test_crlf_split_across_read_chunks_is_one_line_ending(db, monkeypatch):
    monkeypatch.setattr(csvfile, "_CHUNK_BYTES", 3)
    text = csv_text("A1,,,602-555-0143,,1,,,", "A2,,,,,1,,,", "A3,,,602-555-0143,,x,,,", eol="\r\n")
    result = run(db, text)
    assert result.created == 1
    assert [(line, number) for line, number, _ in reasons(result)] == [(3, "A2"), (4, "A3")]


def test_rejections_name_the_physical_line_across_embedded_newlines(db):
    text = (
        f"{HEADER},notes\n"
        'A1,Ana,,602-555-0143,,1,,,,"first\nsecond\r\nthird"\n'  # lines 2-4
        "A2,,,(555) 123,,1,,,,\n"  # line 5
        'A3,,,,,1,,,,"spans\nlines"\n'  # lines 6-7: reported where it starts
        "A4,,,602-555-0143,,1,,,,\n"  # line 8
        "A5,,,602-555-0143,,-1,,,,\n"  # line 9
    )
    result = run(db, text)
    assert result.created == 2
    assert reasons(result) == [
        (5, "A2", "phone '(555) 123' is not a valid US or Canadian number"),
        (6, "A3", "a phone or an email is required"),
        (9, "A5", "balance '-1': amount cannot be negative"),
    ]


BAD_ROWS = [
    (",,,602-555-0143,,1,,,", "account_number is required"),
    ("X" * 65 + ",,,602-555-0143,,1,,,", "account_number is longer than 64 characters"),
    ("A\x001,,,602-555-0143,,1,,,", "account_number contains a control character"),
    ("A1,,,602-555-0143,,,,,", "balance is required"),
    ("A1,,,602-555-0143,,12.345,,,", "balance '12.345': more than two decimal places"),
    ("A1,,,602-555-0143,,1e9,,,", "balance '1e9': not a dollar amount"),
    ("A1,,,602-555-0143,,NaN,,,", "balance 'NaN': not a dollar amount"),
    ("A1,,,,,1,,,", "a phone or an email is required"),
    ("A1,,,(555) 123,,1,,,", "phone '(555) 123' is not a valid US or Canadian number"),
    ("A1,,,(555) 123,a@example.com,1,,,", "phone '(555) 123' is not a valid"),
    ("A1,,,+44 20 7946 0000,,1,,,", "is outside the US and Canada"),
    ("A1,,,1-900-200-1234,,1,,,", "is a premium-rate number"),
    ("A1,,,,not-an-email,1,,,", "email 'not-an-email' is not valid"),
    ("A1,,,602-555-0143,,1,03/10/2026,,", "due_date '03/10/2026' is not a YYYY-MM-DD date"),
    ("A1,,,602-555-0143,,1,2026-02-30,,", "due_date '2026-02-30' is not a YYYY-MM-DD date"),
    ("A1,,,602-555-0143,,1,20260310,,", "due_date '20260310' is not a YYYY-MM-DD date"),
    ("A1,,,602-555-0143,,1,,8501,", "Canadian postal code (did a spreadsheet drop"),
    ("A1,,,602-555-0143,,1,,85001-12,", "zip '85001-12' must be 5 digits, ZIP+4 or a Canadian"),
    ("A1,,,602-555-0143,,1,,K1A 0B,", "zip 'K1A 0B' must be 5 digits, ZIP+4 or a Canadian"),
    ("A1,,,602-555-0143,,1,,,fr", "language 'fr' must be en or es"),
    ("A1," + "N" * 101 + ",,602-555-0143,,1,,,", "first_name is longer than 100 characters"),
    ('A1,"Ana\nMaría",,602-555-0143,,1,,,', "first_name contains a control character"),
    ("A1,,Lee\t,602-555-0143,,1,,,,x,y", "11 fields but the header has 9"),
]


@pytest.mark.parametrize(("row", "reason"), BAD_ROWS)
def test_each_bad_row_is_rejected_with_its_reason_and_never_stops_good_ones(db, row, reason):
    text = csv_text("G1,,,602-555-0143,,1,,,", row, "G2,,,602-555-0143,,2,,,")
    result = run(db, text)
    assert result.created == 2
    [rejected] = result.rejected
    assert rejected.line == 3
    assert reason in rejected.reason
    assert account_count(db) == 2


def test_short_rows_and_trailing_empty_cells_are_accepted(db):
    result = run(db, csv_text("A1,Ana,,602-555-0143,,1", "A2,,,602-555-0143,,1,,,,,,"))
    assert result.created == 2 and result.rejected == []
    assert account(db, "A1").language == "en"


def test_language_is_case_insensitive(db):
    run(db, csv_text("A1,,,602-555-0143,,1,,, ES "))
    assert account(db, "A1").language == "es"


def test_blank_rows_are_skipped_and_counted(db):
    result = run(
        db, csv_text("A1,,,602-555-0143,,1,,,", "", ",,,,,,,,", "  ,  ", "A2,,,,a@b.co,1,,,")
    )
    assert (result.created, result.blank, result.rejected, result.rows) == (2, 3, [], 5)


def test_the_second_occurrence_of_an_account_number_is_a_duplicate(db):
    text = csv_text(
        "A1,First,,602-555-0143,,1,,,",
        "A2,,,602-555-0143,,1,,,",
        "A1,Second,,602-555-0143,,2,,,",
        "B1,,,bad,,1,,,",
        "B1,,,602-555-0143,,1,,,",
    )
    result = run(db, text, batch_size=1)
    assert result.created == 2
    assert reasons(result) == [
        (4, "A1", "duplicate of line 2"),
        (5, "B1", "phone 'bad' is not a phone number"),
        (6, "B1", "duplicate of line 5"),
    ]
    assert account(db, "A1").first_name == "First"


def test_existing_accounts_are_updated_or_left_unchanged(db):
    run(db, csv_text("A1,Ana,,602-555-0143,,1,,,", "A2,Bob,,602-555-0143,,2,,,"))
    before = account(db, "A2").updated_at
    result = run(db, csv_text("A1,Ana,,602-555-0143,,9.99,,,es", "A2,Bob,,602-555-0143,,2,,,"))
    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)
    assert account(db, "A1").balance_cents == 999 and account(db, "A1").language == "es"
    assert account(db, "A2").updated_at == before


def test_columns_missing_from_the_file_are_left_alone(db):
    run(db, csv_text("A1,Ana,Lee,602-555-0143,ana@example.com,1,2026-04-01,85001,es"))
    result = run(db, "account_number,balance,phone\nA1,5,602-555-0143\n")
    assert result.updated == 1
    ana = account(db, "A1")
    assert (ana.first_name, ana.email, ana.zip, ana.language) == (
        "Ana",
        "ana@example.com",
        "85001",
        "es",
    )
    assert ana.balance_cents == 500


def test_an_empty_cell_in_a_present_column_clears_the_value(db):
    run(db, csv_text("A1,Ana,,602-555-0143,ana@example.com,1,2026-04-01,85001,"))
    run(db, csv_text("A1,Ana,,602-555-0143,,1,,,"))
    ana = account(db, "A1")
    assert (ana.email, ana.due_date, ana.zip) == (None, None, None)


def test_rows_are_written_in_batches_with_progress(db):
    rows = [f"A{n},,,602-555-0143,,{n},,," for n in range(25)]
    data = csv_text(*rows).encode()
    seen: list[int] = []
    result = run(db, data, batch_size=10, progress=seen.append)
    assert result.created == 25
    assert seen == sorted(seen) and seen[-1] == len(data) and len(seen) >= 3
    # Committed rows are not kept alive by the session between batches.
    assert len(db.identity_map) <= 10


def test_a_batch_that_loses_a_race_is_retried_whole(db, monkeypatch):
    """Another import inserts A1 between our SELECT and our INSERT: the batch is rolled back
    and written again, A1 becoming an update; nothing is written twice or half-written."""
    real_scalars = db.scalars
    raced = []

    def stale_scalars(query):
        if raced:
            return real_scalars(query)
        raced.append(True)
        with runtime().db.session() as other:
            other.add(Account(account_number="A1", phone="+16025550143", balance_cents=1))
        return iter(())

    monkeypatch.setattr(db, "scalars", stale_scalars)
    result = run(db, csv_text("A1,Ana,,602-555-0143,,5,,,", "A2,,,602-555-0143,,6,,,"))
    assert (result.created, result.updated) == (1, 1)
    assert account_count(db) == 2
    assert account(db, "A1").balance_cents == 500


def test_an_overlong_line_is_rejected_without_being_held_in_memory(db, monkeypatch):
    monkeypatch.setattr(csvfile, "MAX_LINE_BYTES", 200)
    monkeypatch.setattr(csvfile, "_CHUNK_BYTES", 64)
    text = csv_text(
        "A1,,,602-555-0143,,1,,,", "A2," + "x" * 500 + ",,602-555-0143,,1,,,", "A3,,,,a@b.co,1,,,"
    )
    result = run(db, text)
    assert result.created == 2
    assert [(r.line, r.reason) for r in result.rejected] == [(3, "line 3 is longer than 1 MiB")]
    assert account(db, "A3") is not None


def test_a_field_over_the_csv_limit_is_rejected_and_reading_goes_on(db):
    text = csv_text(
        "A1,,,602-555-0143,,1,,,", "A2," + "x" * 200_000 + ",,,,1,,,", "A3,,,,a@b.co,1,,,"
    )
    result = run(db, text)
    assert result.created == 2
    [rejected] = result.rejected
    assert (rejected.line, rejected.account_number) == (3, "")
    assert rejected.reason.startswith("unreadable CSV: field larger than field limit")


FORMULAS = {
    "account_number": "=1+2",
    "first_name": '=HYPERLINK("http://evil.example","click")',
    "last_name": "@SUM(A1:A9)",
    "email": "-x@example.com",
}


def formula_row() -> str:
    cells = [FORMULAS["account_number"], FORMULAS["first_name"], FORMULAS["last_name"]]
    cells += ["602-555-0143", FORMULAS["email"], "1", "", "", ""]
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue()


def test_formula_cells_are_stored_exactly_and_escaped_on_export(db):
    run(db, csv_text(formula_row(), "'Tis,'Quote,''Twice,602-555-0143,,1,,,"))
    stored = account(db, "=1+2")
    assert (stored.first_name, stored.last_name, stored.email) == (
        FORMULAS["first_name"],
        FORMULAS["last_name"],
        FORMULAS["email"],
    )
    assert account(db, "'Tis").last_name == "'Twice"  # a doubled escape is undone once
    out = io.StringIO()
    assert export_accounts(db, out) == 2
    exported = {row["account_number"]: row for row in csv.DictReader(io.StringIO(out.getvalue()))}
    row = exported["'=1+2"]
    assert row["first_name"] == "'" + FORMULAS["first_name"]
    assert row["last_name"] == "'@SUM(A1:A9)"
    assert row["email"] == "'-x@example.com"
    assert row["phone"] == "'+16025550143"
    assert exported["''Tis"]["first_name"] == "''Quote"  # stored as given, then escaped
    for cells in exported.values():
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells.values())


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("=x", "'=x"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'x", "''x"),
        ("x=", "x="),
    ],
)
def test_escape_formula(text, escaped):
    assert escape_formula(text) == escaped


def snapshot(db) -> list[tuple]:
    db.expire_all()
    columns = (
        Account.account_number,
        Account.first_name,
        Account.last_name,
        Account.phone,
        Account.email,
        Account.balance_cents,
        Account.due_date,
        Account.zip,
        Account.language,
    )
    return [tuple(row) for row in db.execute(select(*columns).order_by(Account.account_number))]


def test_an_exported_file_imports_back_unchanged(db):
    run(
        db,
        csv_text(
            formula_row(),
            'A1,José,Muñoz,(602) 555-0143,Jose@Example.com,"$1,234.56",2026-04-01,85001-1234,es',
            "A2,,,,b@example.com,0,,,",
            "'Tis,'+1,,602-555-0143,,0.07,,,",
        ),
    )
    before = snapshot(db)
    out = io.StringIO()
    export_accounts(db, out)
    assert run(db, out.getvalue()).unchanged == 4
    db.execute(delete(Account))
    db.commit()
    result = run(db, out.getvalue())
    assert result.created == 4 and result.rejected == []
    assert snapshot(db) == before


ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


def cell(*samples: str) -> st.SearchStrategy[str]:
    """The first sample (a good value) half the time, else any of them."""
    return st.one_of(st.just(samples[0]), st.sampled_from(samples))


def garble(row: list[str], index: int, text: str) -> list[str]:
    return [text if i == index else value for i, value in enumerate(row)]


# Mostly well-formed rows with a bad cell here and there, plus rows of anything at all.
PLAUSIBLE_ROW = st.tuples(
    st.one_of(st.integers(0, 10**6).map("H{}".format), cell("=A3", " A4 ", "", "'+A5")),
    cell("Ana", "", "=cmd", "José"),
    cell("Lee", "", "'@x"),
    cell("602-555-0143", "'+16025550143", "", "(555) 123", "+44 20 7946 0000"),
    cell("a@example.com", "", "x@", "-y@example.com"),
    cell("1", "$1,234.56", "0.07", "", "-2", "12.345", "1e9"),
    cell("2026-04-01", "", "2026-02-30"),
    cell("85001", "85001-1234", "", "8501"),
    cell("en", "es", "", "ES", "fr"),
).map(list)
GARBLED_ROW = st.builds(garble, PLAUSIBLE_ROW, st.integers(0, 8), ANY_TEXT)
ROW = st.one_of(PLAUSIBLE_ROW, GARBLED_ROW, st.lists(ANY_TEXT, max_size=11))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(ROW, max_size=15), encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
def test_any_rows_are_each_accounted_for_and_never_crash_the_import(db, rows, encoding):
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(HEADER.split(","))
    writer.writerows(rows)
    data = out.getvalue().encode(encoding, errors="replace")
    before = account_count(db)
    result = run(db, data, batch_size=4)
    assert result.rows == len(rows)
    assert account_count(db) == before + result.created
    for rejected in result.rejected:
        assert rejected.reason and rejected.line >= 2
    written = result.created + result.updated + result.unchanged
    event(f"written={min(written, 3)} rejected={min(len(result.rejected), 3)}")
