from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from linkpay.cli import main
from linkpay.models import Account

HEADER = "account_number,first_name,last_name,phone,email,balance,due_date,zip,language"


@pytest.fixture
def cli(app, runner, config_overrides, monkeypatch):
    """Invoke ``linkpay ...`` as an operator would, against the test database."""
    monkeypatch.delenv("LINKPAY_CONFIG", raising=False)
    for dotted in ("app.database_url", "app.redis_url", "app.secret_key", "app.base_url"):
        section, key = dotted.split(".")
        monkeypatch.setenv(f"LINKPAY_{section.upper()}_{key.upper()}", config_overrides[dotted])

    def invoke(*args: str, **kwargs):
        return runner.invoke(main, list(args), catch_exceptions=False, **kwargs)

    return invoke


def write(tmp_path, text: str, name: str = "accounts.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def count(db) -> int:
    return db.scalar(select(func.count()).select_from(Account))


def test_import_prints_counts_then_each_rejected_row(cli, db, tmp_path):
    path = write(
        tmp_path,
        f"{HEADER},notes,Region\n"
        "A1,Ana,,(602) 555-0143,,1,,,,,\n"
        "A2,Bob,,(555) 123,,1,,,,,\n"
        ",,,602-555-0143,,1,,,,,\n"
        "A3,,,,c@example.com,$5,,,,,\n"
        "A1,Dup,,602-555-0143,,1,,,,,\n",
    )
    result = cli("accounts", "import", path)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "created: 2",
        "updated: 0",
        "unchanged: 0",
        "rejected: 3",
        "line 3: A2: phone '(555) 123' is not a valid US or Canadian number",
        "line 4: (no account number): account_number is required",
        "line 6: A1: duplicate of line 2",
        "ignored columns: notes, Region",
    ]
    assert count(db) == 2


def test_a_second_import_updates(cli, db, tmp_path):
    cli("accounts", "import", write(tmp_path, f"{HEADER}\nA1,,,602-555-0143,,1,,,\n"))
    result = cli("accounts", "import", write(tmp_path, f"{HEADER}\nA1,,,602-555-0143,,2,,,\n"))
    assert result.output.splitlines()[:4] == [
        "created: 0",
        "updated: 1",
        "unchanged: 0",
        "rejected: 0",
    ]
    db.expire_all()
    assert db.scalar(select(Account.balance_cents)) == 200


def test_no_progress_bar_when_output_is_not_a_terminal(cli, tmp_path):
    result = cli("accounts", "import", write(tmp_path, f"{HEADER}\nA1,,,602-555-0143,,1,,,\n"))
    assert "importing" not in result.output and "%" not in result.output


def test_a_missing_column_fails_the_command_and_writes_nothing(cli, db, tmp_path):
    path = write(tmp_path, "account_number,phone\nA1,602-555-0143\n")
    result = cli("accounts", "import", path)
    assert result.exit_code == 1
    assert "Error: missing required column(s): balance" in result.output
    assert count(db) == 0


def test_a_nonexistent_file_is_a_clear_error(cli, tmp_path):
    result = cli("accounts", "import", str(tmp_path / "nope.csv"))
    assert result.exit_code != 0
    assert "nope.csv" in result.output and "does not exist" in result.output


def test_import_reads_standard_input(cli, db):
    result = cli("accounts", "import", "-", input=f"{HEADER}\nA1,,,602-555-0143,,1,,,\n")
    assert result.exit_code == 0 and "created: 1" in result.output
    assert count(db) == 1


def test_control_characters_from_the_file_never_reach_the_terminal(cli, tmp_path):
    path = write(tmp_path, f"{HEADER}\nA\x1b[2J,,,602-555-0143,,1,,,\n")
    result = cli("accounts", "import", path)
    assert "\x1b" not in result.output
    assert "line 2: A\\x1b[2J: account_number contains a control character" in result.output


def test_export_to_standard_output_escapes_formulas(cli, tmp_path):
    cli(
        "accounts",
        "import",
        write(tmp_path, f'{HEADER}\nA1,"=HYPERLINK(""x"")",,602-555-0143,,1,,,\n'),
    )
    result = cli("accounts", "export")
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows == [
        HEADER.split(","),
        ["A1", '\'=HYPERLINK("x")', "", "'+16025550143", "", "1.00", "", "", "en"],
    ]
    assert "exported 1 accounts" in result.stderr


def test_an_exported_file_imports_back_unchanged(cli, tmp_path):
    source = write(
        tmp_path,
        f"{HEADER}\n"
        'A1,José,Muñoz,602-555-0143,jose@example.com,"$1,234.56",2026-04-01,85001,es\n'
        "=2,+x,@y,,-z@example.com,0,,,\n",
    )
    cli("accounts", "import", source)
    exported = tmp_path / "export.csv"
    assert cli("accounts", "export", str(exported)).exit_code == 0
    assert exported.read_bytes().startswith(b"\xef\xbb\xbf")  # so Excel reads é as é
    result = cli("accounts", "import", str(exported))
    assert result.output.splitlines()[:4] == [
        "created: 0",
        "updated: 0",
        "unchanged: 2",
        "rejected: 0",
    ]


def test_export_to_an_unwritable_place_is_a_clear_error(cli, tmp_path):
    result = cli("accounts", "export", str(tmp_path / "no-such-dir" / "out.csv"))
    assert result.exit_code == 1
    assert "Error: cannot write" in result.output
