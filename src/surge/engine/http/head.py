"""Finding a response's header block in the bytes read, and a quick look into it.

httptools calls a Python ``on_header`` for every header of every response:
five headers from nginx cost ~10,000 of the ~94,000 instructions of a scripted
request (bench/instructions.py, callgrind), for headers most scenarios never
read. The connection keeps the block instead (one slice of bytes it already
has); the parser has validated it by the time it is used, and
:func:`surge.api.response.header_pairs` splits it if a scenario reads headers.
"""

from __future__ import annotations


def head_end(raw: bytes) -> tuple[int, int]:
    """(end, length of the terminator) of the header block at the start of ``raw``:
    ``b"\\r\\n\\r\\n"``, or a bare ``b"\\n\\n"`` from lenient servers; (-1, 0) if absent."""
    end = raw.find(b"\r\n\r\n")
    bare = raw.find(b"\n\n", 0, end if end >= 0 else len(raw))
    if bare >= 0:
        return bare, 2
    return (end, 4) if end >= 0 else (-1, 0)


def framed_by_length(head: bytes) -> bool:
    """True when the header block delimits the body by ``Content-Length`` or chunking, so a
    close before its end cuts the body short; False for a body that ends at the close."""
    low = head.lower()
    return b"\ncontent-length:" in low or b"\ntransfer-encoding:" in low


def last_value(low_head: bytes, name: bytes) -> bytes | None:
    """The last value of header ``name`` (lower-case, without colon) in a lower-cased
    header block, stripped; None when absent. A quick look without splitting the block."""
    i = low_head.rfind(b"\n" + name + b":")
    if i < 0:
        return None
    start = i + len(name) + 2
    stop = low_head.find(b"\n", start)
    return low_head[start : stop if stop >= 0 else len(low_head)].strip(b" \t\r")


def head_keeps_alive(low_head: bytes) -> bool:
    """Whether a connection stays open after a response whose body needs no framing (a
    HEAD response), from its lower-cased header block: HTTP/1.1 unless ``Connection:
    close``, HTTP/1.0 only with ``Connection: keep-alive``. (httptools' own answer
    assumes a HEAD response without a length runs to the close.)"""
    value = last_value(low_head, b"connection")
    tokens = [t.strip() for t in value.split(b",")] if value else []
    if low_head.startswith(b"http/1.0"):
        return b"keep-alive" in tokens
    return b"close" not in tokens
