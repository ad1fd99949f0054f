"""``linkpay worker [--burst]``: an RQ worker with its scheduler over every linkpay queue,
plus the sweep that finds due work in the database (held messages, retries)."""

from __future__ import annotations

import threading
import time

import click
from rq import SimpleWorker

from linkpay.queue import SWEEP_INTERVAL_SECONDS, EmbeddedRunner, enqueue_sweep


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when nothing is due instead of waiting.")
def worker_command(burst: bool) -> None:
    """Run jobs: sends, receipts, retries and the periodic sweep."""
    from jobs import set_worker_app
    from linkpay import create_app
    from linkpay.runtime import runtime
    from linkpay.services import sweep

    app = create_app()
    set_worker_app(app)
    with app.app_context():
        rt = runtime()
        # Due work lives in the database; sweeping first means --burst sends what is due.
        counts = sweep.run(rt.db)
        click.echo(f"sweep: {_describe(counts)}")
        if rt.queue.embedded:
            _run_embedded(app, burst)
            return
        if not burst:
            _start_sweep_ticker(rt.queue)
        # SimpleWorker runs jobs in this process: forking a work horse per job costs more
        # than a send takes, and the app (its connection pools) is built once.
        worker = rt.queue.worker(SimpleWorker)
        worker.work(burst=burst, with_scheduler=True, logging_level="INFO")


def _run_embedded(app, burst: bool) -> None:
    from linkpay.runtime import runtime

    if burst:
        runtime().queue.drain()
        return
    click.echo("embedded queue (no app.redis_url): sending what the database holds as due")
    runner = EmbeddedRunner(app)
    runner.run()  # in this thread; Ctrl-C stops it


def _start_sweep_ticker(queue) -> threading.Thread:
    """Every worker asks for a sweep each interval; the job id makes it run once."""

    def tick():
        while True:
            time.sleep(SWEEP_INTERVAL_SECONDS)
            enqueue_sweep(queue)

    thread = threading.Thread(target=tick, name="linkpay-sweep-ticker", daemon=True)
    thread.start()
    return thread


def _describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items()) or "nothing due"


COMMANDS = [worker_command]
