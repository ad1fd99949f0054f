"""Fake provider APIs: small real HTTP servers the real Twilio and SendGrid clients talk to.

Each fake listens on 127.0.0.1 on a free port, in a background thread, records every
request it receives (parsed) and answers like the real API as far as the clients need.
Tests queue up failures with ``fake.reply(...)`` (a status, headers, a body, a delay longer
than the client's timeout); requests with nothing queued get the normal answer.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One canned answer. ``body`` is JSON-encoded unless it is already a str."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to stall before answering (a client timeout)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed form (dict) or JSON document
    authorized: bool
    status: int | None = None  # what the fake answered; None if the client had gone


class FakeServer(ABC):
    """The shared machinery; subclasses implement ``handle(request) -> Reply``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Called (in the server's thread) with each request before it is answered: lets a
        # test look at the database while the provider call is in flight.
        self.on_request: Callable[[Recorded], None] | None = None

    # -- controlling the fake from a test ----------------------------------------------

    def reply(self, status: int, body: Any = None, headers: dict | None = None, delay=0.0):
        """Answer the next request (after any already queued) with this instead."""
        with self._lock:
            self._replies.append(Reply(status, body, dict(headers or {}), delay))

    def stall(self, seconds: float) -> None:
        """Make the next request wait ``seconds`` before it is answered normally."""
        with self._lock:
            self._replies.append(Reply(0, delay=seconds))

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        # A short poll keeps stop() (which waits for the loop to notice) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # cuts short any stalled answer
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- used by the handler ------------------------------------------------------------

    def next_reply(self) -> Reply | None:
        with self._lock:
            return self._replies.popleft() if self._replies else None

    def record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)

    @abstractmethod
    def handle(self, recorded: Recorded) -> Reply:
        """The provider's answer to a request no failure was injected for."""

    @abstractmethod
    def parse_body(self, content_type: str, raw: bytes) -> Any:
        """The request body as the provider would read it."""

    @abstractmethod
    def authorized(self, headers: dict[str, str]) -> bool:
        """Whether the request carries the credentials the provider checks."""


class _Handler(BaseHTTPRequestHandler):
    owner: FakeServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs and clients use
    # Headers and body leave in separate writes; with Nagle on, the second waits for the
    # client's delayed ACK (40 ms) on every kept-alive request.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.title(): v for k, v in self.headers.items()}
        owner = self.owner
        recorded = Recorded(
            method="POST",
            path=self.path,
            headers=headers,
            body=owner.parse_body(headers.get("Content-Type", ""), raw),
            authorized=owner.authorized(headers),
        )
        owner.record(recorded)
        if owner.on_request is not None:
            owner.on_request(recorded)
        reply = owner.next_reply()
        if reply is not None and reply.delay and owner._stopping.wait(reply.delay):
            return  # the fake is shutting down: nobody is waiting for this answer
        if reply is None or reply.status == 0:
            reply = owner.handle(recorded)
        self._send(reply, recorded)

    def _send(self, reply: Reply, recorded: Recorded) -> None:
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, str):
            payload = reply.body.encode()
        else:
            payload = json.dumps(reply.body).encode()
        # Set before answering: a test reads it as soon as the client has its answer.
        recorded.status = reply.status
        try:
            self.send_response(reply.status)
            if payload:
                self.send_header("Content-Type", "application/json")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            recorded.status = None  # the client gave up (its timeout): what a stall tests

    def log_message(self, format: str, *args) -> None:
        """Quiet: a test run should not print a line per fake API call."""
