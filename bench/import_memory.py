"""Import a generated 100,000-row CSV and show that memory stays flat. Run by hand:

    python bench/import_memory.py                 # a temporary SQLite file
    LINKPAY_APP_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/linkpay_bench \\
        python bench/import_memory.py             # PostgreSQL (createdb linkpay_bench first)

With LINKPAY_CONFIG or LINKPAY_APP_DATABASE_URL set, the database they name is used; point
them at a scratch database, never at one a test suite drops. The schema is migrated first.
Two passes run: the first creates every account, the second updates every balance. Peak RSS
(ru_maxrss, which only ever grows) is printed as the file is read: if it stays level from
the first tenth of the file to the end, the import does not hold rows in memory. The
BENCH- accounts are deleted afterwards unless --keep is given.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import delete

from linkpay.cli.db import upgrade
from linkpay.config import load_config
from linkpay.db import Database
from linkpay.models import Account
from linkpay.services.accounts_import import COLUMNS, import_accounts

PHONE_FORMS = ("(602) 555-{:04d}", "602.555.{:04d}", "+1 602 555 {:04d}", "1-602-555-{:04d}")


def peak_rss_mib() -> float:
    # Linux reports kilobytes, macOS bytes.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / (1 << 20)


def generate(path: Path, rows: int, balance_offset: int) -> None:
    """One row per account, written as a stream; about 1% are bad on purpose."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for n in range(rows):
            phone = PHONE_FORMS[n % 4].format(n % 10000) if n % 100 else "(555) 123"
            cents = (n * 7919 + balance_offset) % 10_000_00
            writer.writerow(
                [
                    f"BENCH-{n:07d}",
                    "Ana" if n % 3 else "=José",  # formula-looking cells, stored as given
                    f"Muñoz {n}",
                    phone,
                    f"bench{n}@example.com" if n % 2 else "",
                    f"${cents // 100:,}.{cents % 100:02d}",
                    f"2026-{n % 12 + 1:02d}-{n % 28 + 1:02d}",
                    f"{85000 + n % 1000:05d}",
                    "es" if n % 5 == 0 else "en",
                ]
            )


def run_pass(database: Database, label: str, path: Path, rows: int) -> None:
    size = path.stat().st_size
    marks = iter(range(1, 11))
    next_mark = next(marks)

    def progress(done: int) -> None:
        nonlocal next_mark
        while next_mark is not None and done >= size * next_mark / 10:
            print(f"  {next_mark * 10:3d}% read  peak RSS {peak_rss_mib():7.1f} MiB")
            next_mark = next(marks, None)

    mib = size / (1 << 20)
    print(f"{label}: {rows:,} rows, {mib:.1f} MiB; peak RSS before {peak_rss_mib():.1f} MiB")
    started = time.perf_counter()
    with database.session() as session:
        result = import_accounts(session, path, progress=progress)
    elapsed = time.perf_counter() - started
    print(
        f"  created {result.created:,}, updated {result.updated:,}, unchanged "
        f"{result.unchanged:,}, rejected {len(result.rejected):,} in {elapsed:.1f} s "
        f"= {rows / elapsed:,.0f} rows/s; peak RSS after {peak_rss_mib():.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="leave the BENCH- accounts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        overrides = {}
        if not (os.environ.get("LINKPAY_CONFIG") or os.environ.get("LINKPAY_APP_DATABASE_URL")):
            overrides["app.database_url"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
        url = load_config(overrides=overrides)["app.database_url"]
        print(f"database: {url.split('@')[-1]}; peak RSS at start {peak_rss_mib():.1f} MiB")
        upgrade(url)
        # The importer needs only a session, so no app (and none of its side effects) is built.
        database = Database(url)
        try:
            for label, offset in (("create pass", 0), ("update pass", 1)):
                path = workdir / f"{label.split()[0]}.csv"
                generate(path, args.rows, offset)
                run_pass(database, label, path, args.rows)
            if not args.keep:
                with database.session() as session:
                    session.execute(delete(Account).where(Account.account_number.like("BENCH-%")))
        finally:
            database.dispose()


if __name__ == "__main__":
    main()
