"""CSV files as staff export them from spreadsheets and billing systems, read as a stream.

The bytes are split into physical lines (CRLF, LF, or a lone CR as old Mac Excel wrote) and
each line is decoded on its own: as UTF-8 when it is valid UTF-8, else as Windows-1252
(Latin-1 for the five bytes cp1252 leaves undefined). Deciding per line rather than per file
keeps reading streamed and still copes with a file that is UTF-8 for a megabyte and then holds
one line pasted from a legacy system; a cp1252 line that happens to be valid UTF-8 needs
byte pairs like "Ã©" that real names do not contain. A UTF-8 byte-order mark is dropped.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from typing import IO

MAX_LINE_BYTES = 1 << 20
_CHUNK_BYTES = 64 * 1024
_EOL = re.compile(rb"\r\n|\r|\n")


class CsvFileError(Exception):
    """The file cannot be read as CSV text at all."""


class DecodedLines:
    """Iterate over a binary stream's lines as text, for ``csv.reader``.

    ``count`` is the number of lines handed out so far, which is what ``csv.reader`` counts in
    ``line_num``. A line longer than MAX_LINE_BYTES is never held in memory: it is replaced by
    an empty line (so the two counts agree) and its number is kept in ``overlong``."""

    def __init__(self, stream: IO[bytes]):
        self.stream = stream
        self.bytes_read = 0
        self.count = 0
        self.overlong: list[int] = []

    def __iter__(self) -> Iterator[str]:
        for raw in self._byte_lines():
            self.count += 1
            if self.count == 1:
                raw = _check_start(raw)
            yield decode_line(raw)

    def _byte_lines(self) -> Iterator[bytes]:
        pending, skipping, at_end = b"", False, False
        while not at_end:
            chunk = self.stream.read(_CHUNK_BYTES)
            at_end = not chunk
            self.bytes_read += len(chunk)
            pending += chunk
            start = 0
            for match in _EOL.finditer(pending):
                if match[0] == b"\r" and match.end() == len(pending) and not at_end:
                    break  # the LF of this CRLF may be the next chunk's first byte
                line, start = pending[start : match.end()], match.end()
                yield b"\n" if skipping else line
                skipping = False
            pending = pending[start:]
            if len(pending) > MAX_LINE_BYTES:
                if not skipping:
                    self.overlong.append(self.count + 1)
                pending, skipping = b"", True
        if pending or skipping:
            yield b"\n" if skipping else pending

    def take_overlong(self, first: int, last: int) -> int | None:
        """The first overlong line among lines ``first``..``last``, forgetting those up to
        ``last`` so the list stays as short as the file is strange."""
        found = next((n for n in self.overlong if first <= n <= last), None)
        self.overlong = [n for n in self.overlong if n > last]
        return found


def decode_line(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _check_start(raw: bytes) -> bytes:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CsvFileError("the file is UTF-16 text; save it as CSV (UTF-8 or Windows) instead")
    return raw.removeprefix(codecs.BOM_UTF8)
