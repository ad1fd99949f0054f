"""``linkpay accounts import`` and ``export``: accounts to and from CSV (contract §2).

Reading is streamed line by line (``linkpay.csvfile`` says how encodings and line endings are
handled). Rows are validated one by one; a bad row is reported with the physical line it starts
on and never reaches the database. Good rows are upserted by account_number in batches, one
transaction per batch, so a row is written whole or not at all and memory stays flat. Only the
columns the file has are written: a file without an email column leaves emails alone.

Settlement offers: a file may carry the optional columns in OFFER_COLUMNS (not part of the
contract's nine). A row with an offer is checked like any other cell before anything is
written; in its batch the offer is made through ``offers.create_settlement_offer`` (link,
reminders, audit, delivery), unless the account's open settlement offer already has the same
terms, so importing a file twice sends each offer once.

Formula injection: cells are stored exactly as given (after trimming). On export, a cell that a
spreadsheet would run as a formula (= + - @ tab CR), or that starts with the escape itself, gets
a leading ``'`` (OWASP's advice); on import, a ``'`` before one of those characters is taken
for that escape and removed, so an exported file imports back unchanged.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from linkpay import postal_codes
from linkpay.csvfile import MAX_LINE_BYTES, CsvFileError, DecodedLines
from linkpay.emails import normalize_email
from linkpay.models import Account, Offer, OfferKind, OfferStatus
from linkpay.money import parse_dollars, plain_dollars
from linkpay.phones import normalize_phone
from linkpay.services import offers
from linkpay.services.offers import OfferError

COLUMNS = (
    "account_number",
    "first_name",
    "last_name",
    "phone",
    "email",
    "balance",
    "due_date",
    "zip",
    "language",
)
# Optional, after the contract's columns: a settlement offer made to the row's account.
OFFER_COLUMNS = ("offer_amount", "offer_percent", "offer_deadline", "offer_channel")
ATTRIBUTES = {"balance": "balance_cents"}  # file column -> Account attribute, where they differ
BATCH_SIZE = 1000
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ESCAPE = "'"
_SHOWN = 40  # how much of a bad value a reason repeats back
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_PERCENT = re.compile(r"(\d{1,3}) ?%?", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ImportFileError(Exception):
    """The file as a whole cannot be imported (unreadable, no header, a required column
    missing); raised before any row is written."""


@dataclass(frozen=True, slots=True)
class RejectedRow:
    line: int
    account_number: str
    reason: str


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    blank: int = 0  # empty lines and rows of empty cells, skipped
    rejected: list[RejectedRow] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    has_offer_columns: bool = False
    offers_made: int = 0
    offers_unchanged: int = 0  # the open offer already had the row's terms

    @property
    def rows(self) -> int:
        """Every data row the file held, accounted for exactly once."""
        return self.created + self.updated + self.unchanged + self.blank + len(self.rejected)


@dataclass(frozen=True)
class _Header:
    positions: dict[str, int]  # known column -> index in each row
    width: int
    ignored: list[str]

    @property
    def has_offer_columns(self) -> bool:
        return any(name in self.positions for name in OFFER_COLUMNS)


@dataclass(frozen=True, slots=True)
class _SettlementTerms:
    """A row's settlement offer, checked against the row's own balance."""

    amount_cents: int
    percent: int | None
    deadline: dt.date
    channel: str

    def match(self, offer: Offer, balance_cents: int) -> bool:
        """Whether ``offer`` already says exactly this, on the same balance, by the same channel."""
        return (
            offer.amount_cents == self.amount_cents
            and offer.percent == self.percent
            and offer.balance_cents == balance_cents
            and offer.expires_at == offers.settlement_expiry(self.deadline)
            and offer.channel == self.channel
        )


@dataclass(frozen=True, slots=True)
class _Row:
    """A validated row waiting for its batch."""

    line: int
    values: dict[str, Any]  # Account attributes
    offer: _SettlementTerms | None


def _read_header(reader: Any, lines: DecodedLines) -> _Header:
    try:
        names = next(row for row in reader if any(cell.strip() for cell in row))
    except StopIteration:
        raise ImportFileError("the file is empty: expected a header row") from None
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: unreadable header: {exc}") from exc
    except CsvFileError as exc:
        raise ImportFileError(str(exc)) from exc
    if lines.overlong:
        raise ImportFileError(f"line {lines.overlong[0]} is over 1 MiB long: is this a CSV file?")
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for index, raw_name in enumerate(names):
        name = raw_name.strip().lower()
        if name in positions:
            raise ImportFileError(f"column {name!r} appears more than once in the header")
        if name in COLUMNS or name in OFFER_COLUMNS:
            positions[name] = index
        elif name:
            ignored.append(raw_name.strip())
    _require_columns(positions, names)
    _check_offer_columns(positions)
    return _Header(positions=positions, width=len(names), ignored=ignored)


def _require_columns(positions: dict[str, int], names: list[str]) -> None:
    missing = [name for name in ("account_number", "balance") if name not in positions]
    if "phone" not in positions and "email" not in positions:
        missing.append("phone or email")
    if missing:
        found = ", ".join(repr(n.strip()[:_SHOWN]) for n in names[:12]) or "nothing"
        raise ImportFileError(
            f"missing required column(s): {', '.join(missing)} (the header has {found})"
        )


def _check_offer_columns(positions: dict[str, int]) -> None:
    """Offer columns come as a set: a deadline and an amount or a percent, or none."""
    has_terms = "offer_amount" in positions or "offer_percent" in positions
    if "offer_deadline" in positions and not has_terms:
        raise ImportFileError("column offer_deadline needs an offer_amount or offer_percent column")
    if "offer_deadline" not in positions and (has_terms or "offer_channel" in positions):
        given = [name for name in OFFER_COLUMNS if name in positions]
        raise ImportFileError(f"missing column offer_deadline (the file has {', '.join(given)})")


def import_accounts(
    session: Session,
    source: str | os.PathLike | IO[bytes],
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    actor: str = "staff:import",
) -> ImportResult:
    """Upsert the accounts in a CSV file (a path or a binary stream) by account_number, and
    make the settlement offers its offer columns give (``actor`` makes them).

    Commits ``session`` once per batch. ``progress`` is called with the bytes read so far
    after each batch. Raises ImportFileError, before writing anything, when the file cannot
    be read or its header lacks a required column."""
    with _open_binary(source) as stream:
        lines = DecodedLines(stream)
        reader = csv.reader(lines)
        header = _read_header(reader, lines)
        result = ImportResult(
            ignored_columns=header.ignored, has_offer_columns=header.has_offer_columns
        )
        writer = _BatchWriter(session, result, batch_size, actor)
        seen: dict[str, int] = {}  # account_number -> the line it was first seen on
        for line, row in _records(reader, lines, result):
            valid = _valid_row(line, row, header, seen, result)
            if valid is not None:
                writer.add(valid)
                if writer.flushed and progress:
                    progress(lines.bytes_read)
        writer.flush()
        if progress:
            progress(lines.bytes_read)
    # A row refused while its batch was written is recorded after rows read later.
    result.rejected.sort(key=lambda rejected: rejected.line)
    return result


@contextlib.contextmanager
def _open_binary(source: str | os.PathLike | IO[bytes]) -> Iterator[IO[bytes]]:
    if not isinstance(source, str | os.PathLike):
        if isinstance(source.read(0), str):
            raise TypeError("import_accounts needs a binary stream, not a text stream")
        yield source
        return
    try:
        stream = open(source, "rb")  # noqa: SIM115 - closed below, after the import
    except OSError as exc:
        raise ImportFileError(f"cannot read {os.fspath(source)}: {exc.strerror}") from exc
    with stream:
        yield stream


def _records(reader: Any, lines: DecodedLines, result: ImportResult) -> Iterator[tuple[int, list]]:
    """Each record with the line it starts on; unreadable and blank ones are settled here."""
    while True:
        first = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            result.rejected.append(RejectedRow(first, "", f"unreadable CSV: {exc}"))
            continue
        overlong = lines.take_overlong(first, reader.line_num)
        if overlong is not None:
            reason = f"line {overlong} is longer than {MAX_LINE_BYTES // (1 << 20)} MiB"
            result.rejected.append(RejectedRow(first, "", reason))
        elif not any(cell.strip() for cell in row):
            result.blank += 1
        else:
            yield first, row


def _valid_row(
    line: int, row: list[str], header: _Header, seen: dict[str, int], result: ImportResult
) -> _Row | None:
    """One row's Account attributes and offer, or None after recording why it was rejected."""
    cells = {name: _cell(row, index) for name, index in header.positions.items()}
    number = cells["account_number"]
    try:
        _check_account_number(number)
        # Counted even when this row turns out bad: two rows for one account are ambiguous,
        # so a later one is not taken in its place.
        first_line = seen.setdefault(number, line)
        if first_line != line:
            raise ValueError(f"duplicate of line {first_line}")
        if len(row) > header.width and any(cell.strip() for cell in row[header.width :]):
            raise ValueError(
                f"{len(row)} fields but the header has {header.width} (a comma outside quotes?)"
            )
        values = _parse_cells(cells)
        return _Row(line, values, _settlement_terms(cells, values["balance_cents"]))
    except ValueError as exc:
        result.rejected.append(RejectedRow(line, number[:64], str(exc)))
        return None


def _cell(row: list[str], index: int) -> str:
    """The trimmed cell, with the export's formula escape undone; "" past a short row's end."""
    text = row[index].strip() if index < len(row) else ""
    if text.startswith(_ESCAPE) and text[1:2] and text[1] in (*_FORMULA_STARTS, _ESCAPE):
        return text[1:]
    return text


def _check_account_number(number: str) -> None:
    if not number:
        raise ValueError("account_number is required")
    _check_text("account_number", number, 64)


def _check_text(column: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise ValueError(f"{column} is longer than {limit} characters")
    # PostgreSQL refuses NUL outright, and a newline or escape code in a name would end up
    # inside SMS bodies and email headers.
    if _CONTROL.search(text):
        raise ValueError(f"{column} contains a control character")


def _parse_cells(cells: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {"account_number": cells["account_number"]}
    for column, text in cells.items():
        if column in _PARSERS:
            values[ATTRIBUTES.get(column, column)] = _PARSERS[column](column, text)
    if not values.get("phone") and not values.get("email"):
        raise ValueError("a phone or an email is required")
    return values


def _name(column: str, text: str) -> str:
    _check_text(column, text, 100)
    return text


def _balance(column: str, text: str) -> int:
    if not text:
        raise ValueError("balance is required")
    try:
        return parse_dollars(text)
    except ValueError as exc:
        raise ValueError(f"balance {text[:_SHOWN]!r}: {exc}") from None


def _phone(column: str, text: str) -> str | None:
    return normalize_phone(text) if text else None


def _email(column: str, text: str) -> str | None:
    return normalize_email(text) if text else None


def _due_date(column: str, text: str) -> dt.date | None:
    if not text:
        return None
    try:
        if _DATE.fullmatch(text):
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    raise ValueError(f"due_date {text[:_SHOWN]!r} is not a YYYY-MM-DD date")


def _zip(column: str, text: str) -> str | None:
    if not text:
        return None
    code = postal_codes.normalize(text)
    if code is not None:
        return code
    hint = " (did a spreadsheet drop a leading zero?)" if text.isdigit() and len(text) < 5 else ""
    raise ValueError(
        f"zip {text[:_SHOWN]!r} must be 5 digits, ZIP+4 or a Canadian postal code{hint}"
    )


def _language(column: str, text: str) -> str:
    language = text.lower() or "en"
    if language not in ("en", "es"):
        raise ValueError(f"language {text[:_SHOWN]!r} must be en or es")
    return language


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "first_name": _name,
    "last_name": _name,
    "phone": _phone,
    "email": _email,
    "balance": _balance,
    "due_date": _due_date,
    "zip": _zip,
    "language": _language,
}


def _settlement_terms(cells: dict[str, str], balance_cents: int) -> _SettlementTerms | None:
    """The row's offer, checked by the rules ``linkpay offers create`` applies; None when its
    amount, percent and deadline cells are empty (a channel alone asks for nothing)."""
    amount = cells.get("offer_amount", "")
    percent = cells.get("offer_percent", "")
    deadline = cells.get("offer_deadline", "")
    channel = _offer_channel(cells.get("offer_channel", ""))
    if not (amount or percent or deadline):
        return None
    if amount and percent:
        raise ValueError("give offer_amount or offer_percent, not both")
    if not deadline:
        raise ValueError("an offer needs an offer_deadline")
    if not (amount or percent):
        raise ValueError("offer_deadline needs an offer_amount or an offer_percent")
    column, text = ("offer_amount", amount) if amount else ("offer_percent", percent)
    try:
        cents = parse_dollars(amount) if amount else None
        whole = _offer_percent(percent) if percent else None
        settle_for = offers.settlement_amount(balance_cents, amount_cents=cents, percent=whole)
    except (ValueError, OfferError) as exc:
        raise ValueError(f"{column} {text[:_SHOWN]!r}: {exc}") from None
    return _SettlementTerms(settle_for, whole, _offer_deadline(deadline), channel)


def _offer_percent(text: str) -> int:
    match = _PERCENT.fullmatch(text)
    if match is None:
        raise ValueError("must be a whole percent from 1 to 99")
    return int(match[1])


def _offer_deadline(text: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(text) if _DATE.fullmatch(text) else None
    except ValueError:
        day = None
    if day is None:
        raise ValueError(f"offer_deadline {text[:_SHOWN]!r} is not a YYYY-MM-DD date")
    try:
        offers.check_deadline(day)
    except OfferError:
        raise ValueError(f"offer_deadline {text} is in the past") from None
    return day


def _offer_channel(text: str) -> str:
    channel = text.lower() or "sms"  # as ``linkpay offers create``
    if channel not in offers.CHANNELS:
        raise ValueError(f"offer_channel {text[:_SHOWN]!r} must be sms, email or both")
    return channel


class _OfferRefused(Exception):
    """An offer the service refused while its batch was being written (the deadline day
    ended since the row was read): the batch is written again without that row."""

    def __init__(self, row: _Row, reason: str):
        super().__init__(reason)
        self.row = row
        self.reason = reason


@dataclass
class _BatchOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    offers_made: int = 0
    offers_unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)


class _BatchWriter:
    """Upserts validated rows and makes their offers, ``size`` rows at a time, one
    transaction per batch."""

    def __init__(self, session: Session, result: ImportResult, size: int, actor: str):
        self.session = session
        self.result = result
        self.size = size
        self.actor = actor
        self.pending: list[_Row] = []
        self.flushed = False

    def add(self, row: _Row) -> None:
        self.pending.append(row)
        self.flushed = len(self.pending) >= self.size
        if self.flushed:
            self.flush()

    def flush(self) -> None:
        raced = False
        while self.pending:
            try:
                outcome = self._write()
            except IntegrityError:
                # Another import inserted one of these numbers since our SELECT; the second
                # attempt sees that row and updates it instead.
                if raced:
                    raise
                raced = True
                self.session.rollback()
                continue
            except _OfferRefused as refused:
                # Rolled back whole, offers and accounts alike, so the row is not half-written.
                self.session.rollback()
                self.pending.remove(refused.row)
                number = refused.row.values["account_number"]
                self.result.rejected.append(RejectedRow(refused.row.line, number, refused.reason))
                continue
            self._count(outcome)
            self.pending.clear()

    def _count(self, outcome: _BatchOutcome) -> None:
        result = self.result
        result.created += outcome.created
        result.updated += outcome.updated
        result.unchanged += outcome.unchanged
        result.offers_made += outcome.offers_made
        result.offers_unchanged += outcome.offers_unchanged
        result.rejected.extend(outcome.rejected)

    def _write(self) -> _BatchOutcome:
        numbers = [row.values["account_number"] for row in self.pending]
        query = select(Account).where(Account.account_number.in_(numbers))
        existing = {account.account_number: account for account in self.session.scalars(query)}
        outcome = _BatchOutcome()
        with_offers: list[tuple[_Row, Account]] = []
        for row in self.pending:
            account = existing.get(row.values["account_number"])
            if row.offer is not None:
                reason = _address_problem(row, account)
                if reason is not None:
                    outcome.rejected.append(
                        RejectedRow(row.line, row.values["account_number"], reason)
                    )
                    continue
            if account is None:
                account = Account(**row.values)
                self.session.add(account)
                outcome.created += 1
            elif _apply(account, row.values):
                outcome.updated += 1
            else:
                outcome.unchanged += 1
            if row.offer is not None:
                with_offers.append((row, account))
        if with_offers:
            self._make_offers(with_offers, outcome)
        self.session.commit()
        return outcome

    def _make_offers(self, with_offers: list[tuple[_Row, Account]], outcome: _BatchOutcome):
        self.session.flush()  # new accounts get their ids
        ids = [account.id for _, account in with_offers]
        standing = {
            offer.account_id: offer  # ordered by id: the newest open offer wins
            for offer in self.session.scalars(
                select(Offer)
                .where(
                    Offer.account_id.in_(ids),
                    Offer.kind == OfferKind.SETTLEMENT,
                    Offer.status == OfferStatus.OFFERED,
                )
                .order_by(Offer.id)
            )
        }
        for row, account in with_offers:
            terms = row.offer
            offer = standing.get(account.id)
            if offer is not None and terms.match(offer, account.balance_cents):
                outcome.offers_unchanged += 1
                continue
            try:
                offers.create_settlement_offer(
                    self.session,
                    account,
                    deadline=terms.deadline,
                    amount_cents=None if terms.percent else terms.amount_cents,
                    percent=terms.percent,
                    channel=terms.channel,
                    actor=self.actor,
                )
            except OfferError as exc:
                raise _OfferRefused(row, f"offer refused: {exc.detail}") from exc
            outcome.offers_made += 1


def _address_problem(row: _Row, account: Account | None) -> str | None:
    """Why the row's offer cannot be delivered, judged on the addresses the account will
    have once the row is written (a column the file lacks keeps the stored address)."""

    def address(attribute: str) -> str | None:
        if attribute in row.values:
            return row.values[attribute]
        return getattr(account, attribute) if account is not None else None

    try:
        offers.check_addresses(row.offer.channel, phone=address("phone"), email=address("email"))
    except OfferError as exc:
        return f"offer_channel {row.offer.channel}: {exc.detail}"
    return None


def _apply(account: Account, values: dict[str, Any]) -> bool:
    changed = False
    for attribute, value in values.items():
        if getattr(account, attribute) != value:
            setattr(account, attribute, value)
            changed = True
    return changed


def export_accounts(session: Session, out: IO[str]) -> int:
    """Write every account as import CSV to the text stream ``out``; return how many.

    Cells a spreadsheet would run as a formula are escaped; ``import_accounts`` undoes it."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    attributes = [getattr(Account, ATTRIBUTES.get(column, column)) for column in COLUMNS]
    query = select(*attributes).order_by(Account.account_number)
    count = 0
    for row in session.execute(query.execution_options(yield_per=BATCH_SIZE)):
        writer.writerow(
            [_export_cell(column, value) for column, value in zip(COLUMNS, row, strict=True)]
        )
        count += 1
    return count


def _export_cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "balance":
        return plain_dollars(value)
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    return escape_formula(text)


def escape_formula(text: str) -> str:
    """Prefix a cell that a spreadsheet would evaluate (or that starts with the escape
    itself, so the escape stays reversible) with ``'``."""
    if text.startswith((*_FORMULA_STARTS, _ESCAPE)):
        return _ESCAPE + text
    return text
