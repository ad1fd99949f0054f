"""``linkpay accounts import FILE`` and ``linkpay accounts export [FILE|-]`` (contract §2)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO

import click

from linkpay.cli import with_app
from linkpay.services.accounts_import import (
    ImportFileError,
    ImportResult,
    export_accounts,
    import_accounts,
)


@click.group("accounts")
def accounts_group() -> None:
    """Customer accounts."""


@accounts_group.command("import")
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=str)
)
@with_app
def import_command(file: str) -> None:
    """Upsert accounts from a CSV FILE by account_number ("-" reads standard input).

    Rejected rows are listed with their line number and reason; the others are imported.
    Optional columns offer_amount or offer_percent, offer_deadline and offer_channel make
    settlement offers, as `linkpay offers create` does."""
    from linkpay.cli.links import staff_actor
    from linkpay.runtime import runtime

    source = click.get_binary_stream("stdin") if file == "-" else file
    try:
        with runtime().db.session() as session, _progress(file) as progress:
            result = import_accounts(session, source, progress=progress, actor=staff_actor())
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # the disk or the pipe failed part-way through
        raise click.ClickException(f"reading {file} failed: {exc}") from exc
    _report(result)


@contextlib.contextmanager
def _progress(file: str) -> Iterator[Callable[[int], None] | None]:
    """A bar over the bytes read, for a person watching; scripts and logs get none."""
    if file == "-" or not sys.stdout.isatty():
        yield None
        return
    with click.progressbar(length=os.path.getsize(file), label="importing") as bar:
        yield lambda done: bar.update(done - bar.pos)


def _report(result: ImportResult) -> None:
    click.echo(f"created: {result.created}")
    click.echo(f"updated: {result.updated}")
    click.echo(f"unchanged: {result.unchanged}")
    if result.has_offer_columns:
        click.echo(f"offers made: {result.offers_made}")
        click.echo(f"offers unchanged: {result.offers_unchanged}")
    click.echo(f"rejected: {len(result.rejected)}")
    for row in result.rejected:
        number = row.account_number or "(no account number)"
        click.echo(_printable(f"line {row.line}: {number}: {row.reason}"))
    if result.blank:
        click.echo(f"blank rows skipped: {result.blank}")
    if result.ignored_columns:
        click.echo(_printable(f"ignored columns: {', '.join(result.ignored_columns)}"))


def _printable(text: str) -> str:
    # Values come from the file: an escape sequence in an account number must not get to
    # drive the operator's terminal.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@accounts_group.command("export")
@click.argument(
    "file", default="-", type=click.Path(dir_okay=False, allow_dash=True, path_type=str)
)
@with_app
def export_command(file: str) -> None:
    """Write every account as import CSV to FILE (default "-", standard output).

    A file gets a UTF-8 byte-order mark so Excel reads accented names right; cells Excel
    would run as formulas are prefixed with ' and `accounts import` reads them back."""
    from linkpay.runtime import runtime

    with runtime().db.session() as session, _output(file) as out:
        count = export_accounts(session, out)
    click.echo(f"exported {count} accounts", err=True)


@contextlib.contextmanager
def _output(file: str) -> Iterator[IO[str]]:
    if file != "-":
        try:
            stream = open(file, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
        except OSError as exc:
            raise click.ClickException(f"cannot write {file}: {exc.strerror}") from exc
        with stream:
            yield stream
        return
    # newline="" keeps the csv module's CRLF as written; detach leaves stdout open.
    stdout = io.TextIOWrapper(click.get_binary_stream("stdout"), encoding="utf-8", newline="")
    try:
        yield stdout
    finally:
        stdout.flush()
        stdout.detach()


COMMANDS = [accounts_group]
