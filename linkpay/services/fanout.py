"""Running a campaign's chunks side by side, one worker process per CPU.

Each chunk is independent work (its own accounts, links, messages, transaction and send
jobs) and almost all of it is pure-Python CPU: signing links, deciding, rendering, and
RQ's own ``enqueue_many`` (about 130 µs a job, as much as everything else put together).
One process can only use one CPU, so a 100,000-account campaign would take as long as all
of that added up. ``ChunkPool`` hands chunks to forked workers instead and gives their
results back as they finish.

Forked, not spawned: a spawned child re-imports the caller's ``__main__`` (an unguarded
script would run again), while a forked one starts with the app, its configuration and its
clock already in place. It must not use the database connections it inherits: ``on_start``
(``engine.dispose(close=False)``) makes it open its own, and redis-py does the same for
Redis by itself. Workers leave through ``os._exit``, so nothing inherited is closed.

Only used with PostgreSQL and a real Redis: the embedded queue is an in-process fakeredis
no other process can reach, and SQLite takes one writer at a time anyway. Elsewhere, and
for a single chunk, the chunks run here, one after the other."""

from __future__ import annotations

import multiprocessing
import queue as stdlib_queue
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

BACKLOG_PER_WORKER = 2  # chunks waiting per worker: enough to keep it busy, memory flat
POLL_SECONDS = 1.0


class ChunkFailed(RuntimeError):
    """A worker raised (its traceback is in the message) or died."""


class ChunkPool:
    def __init__(
        self,
        work: Callable[[Any], Any],
        *,
        workers: int,
        on_start: Callable[[], None] = lambda: None,
    ):
        self.work = work
        self.workers = workers
        self.on_start = on_start
        self._context = multiprocessing.get_context("fork")
        self._processes: list = []
        self._inbox = self._outbox = None

    def map(self, chunks: Iterable[Any]) -> Iterator[Any]:
        """``work(chunk)`` for every chunk; results in the order the chunks finish."""
        chunks = iter(chunks)
        first = next(chunks, None)
        if first is None:
            return
        second = next(chunks, None)
        if second is None:
            yield self.work(first)
            return
        if self.workers <= 1 or multiprocessing.current_process().daemon:
            # A daemonic process (itself a multiprocessing worker) may not have children.
            yield from (self.work(chunk) for chunk in _chain([first, second], chunks))
            return
        self._start()
        try:
            yield from self._dispatch([first, second], chunks)
        finally:
            self._stop()

    def _dispatch(self, started: list, rest: Iterator[Any]) -> Iterator[Any]:
        waiting = 0
        for chunk in _chain(started, rest):
            while waiting >= self.workers * BACKLOG_PER_WORKER:
                yield self._result()
                waiting -= 1
            self._inbox.put(chunk)
            waiting += 1
        for _ in range(waiting):
            yield self._result()

    def _start(self) -> None:
        self._inbox = self._context.Queue()
        self._outbox = self._context.Queue()
        for _ in range(self.workers):
            process = self._context.Process(
                target=_serve, args=(self.work, self.on_start, self._inbox, self._outbox)
            )
            process.daemon = True
            process.start()
            self._processes.append(process)

    def _result(self) -> Any:
        while True:
            try:
                result, error = self._outbox.get(timeout=POLL_SECONDS)
            except stdlib_queue.Empty:
                if not all(p.is_alive() for p in self._processes):
                    codes = [p.exitcode for p in self._processes]
                    raise ChunkFailed(f"a campaign worker died (exit codes {codes})") from None
                continue
            if error is not None:
                raise ChunkFailed(f"a campaign worker failed:\n{error}")
            return result

    def _stop(self) -> None:
        """Stop the workers once each has finished the chunk in hand. After an error the
        chunks not yet started are dropped: chunks are whole transactions, so the database
        holds each fully or not at all, and running the campaign again sends to the
        accounts it did not reach."""
        while True:
            try:
                self._inbox.get_nowait()
            except stdlib_queue.Empty:
                break
        for _ in self._processes:
            self._inbox.put(None)
        for process in self._processes:
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
        self._processes = []


def _chain(first: list, rest: Iterator[Any]) -> Iterator[Any]:
    yield from first
    yield from rest


def _serve(work, on_start, inbox, outbox) -> None:
    """A worker: run chunks until told to stop; report the first error and stop."""
    on_start()
    while (chunk := inbox.get()) is not None:
        try:
            outbox.put((work(chunk), None))
        except BaseException:  # reported to the parent, which raises it there
            outbox.put((None, traceback.format_exc()))
            return
