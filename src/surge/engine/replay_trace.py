"""The compact request trace ``surge replay`` hands to its workers.

A trace is columns, not objects: per request an offset (s from the first
request), and small integers pointing into tables of methods, targets, names,
header sets and bodies. It is written once to an ``.npz`` file whose path goes
into the run spec, and every worker reads it and keeps every k-th request
(round robin by index), so a million-request trace costs each worker a few
numpy arrays rather than a million pickled tuples.

The engine knows nothing of logs: whoever builds a trace (the CLI, from
``surge.traffic``) passes plain values to :meth:`TraceBuilder.add`.
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from surge.api.errors import UsageError

VERSION = 1


class TraceBuilder:
    """Accumulates requests in compact columns; :meth:`save` writes the trace file."""

    def __init__(self) -> None:
        self.times = array("d")
        self.methods, self.targets, self.names = array("B"), array("I"), array("I")
        self.header_ids, self.body_ids = array("i"), array("i")
        self._tables: dict[str, dict] = {"methods": {}, "targets": {}, "names": {}, "headers": {}}
        self._bodies: list[bytes] = []
        self._body_index: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self.times)

    def _intern(self, table: str, value) -> int:
        t = self._tables[table]
        i = t.get(value)
        if i is None:
            i = t[value] = len(t)
        return i

    def add(self, t: float, method: str, target: str, name: str,
            headers: tuple[tuple[str, str], ...] = (), body: bytes | None = None) -> None:
        """One request at time ``t`` (s, any origin: offsets are taken from the earliest)."""
        m = self._intern("methods", method)
        if m > 255:
            raise UsageError("the log has more than 256 distinct HTTP methods: is it really an access log?")
        self.times.append(t)
        self.methods.append(m)
        self.targets.append(self._intern("targets", target))
        self.names.append(self._intern("names", name))
        self.header_ids.append(self._intern("headers", headers) if headers else -1)
        if body is None:
            self.body_ids.append(-1)
        else:
            b = self._body_index.get(body)
            if b is None:
                b = self._body_index[body] = len(self._bodies)
                self._bodies.append(body)
            self.body_ids.append(b)

    def save(self, path: Path) -> tuple[int, float]:
        """Write the trace, sorted by time, to ``path`` (.npz); returns (requests, span in s)."""
        times = np.frombuffer(self.times, dtype=np.float64)
        order = np.argsort(times, kind="stable")
        offsets = times[order] - (times[order[0]] if len(order) else 0.0)
        tables = {k: list(v) for k, v in self._tables.items()}
        tables["headers"] = [[list(kv) for kv in h] for h in tables["headers"]]
        blob = b"".join(self._bodies)
        ends = np.cumsum([len(b) for b in self._bodies], dtype=np.int64)
        with path.open("wb") as f:
            np.savez(
                f, version=np.array([VERSION]), offsets=offsets,
                methods=np.frombuffer(self.methods, dtype=np.uint8)[order],
                targets=np.frombuffer(self.targets, dtype=np.uint32)[order],
                names=np.frombuffer(self.names, dtype=np.uint32)[order],
                headers=np.frombuffer(self.header_ids, dtype=np.int32)[order],
                bodies=np.frombuffer(self.body_ids, dtype=np.int32)[order],
                tables=np.frombuffer(json.dumps(tables).encode(), dtype=np.uint8),
                body_blob=np.frombuffer(blob, dtype=np.uint8), body_ends=ends,
            )
        return len(offsets), float(offsets[-1]) if len(offsets) else 0.0


@dataclass
class Trace:
    """One worker's share of a trace: columns plus the tables they index."""

    offsets: np.ndarray  # s from the trace's first request, ascending
    methods: np.ndarray
    targets: np.ndarray
    names: np.ndarray
    headers: np.ndarray
    bodies: np.ndarray
    method_table: list[str]
    target_table: list[str]
    name_table: list[str]
    header_table: list[dict[str, str]]
    body_table: list[bytes]

    def __len__(self) -> int:
        return len(self.offsets)

    def __repr__(self) -> str:
        return f"<Trace requests={len(self)} names={len(self.name_table)}>"


def load_trace(path: str | Path, index: int = 0, count: int = 1) -> Trace:
    """Read the requests ``index, index + count, ...`` of the trace at ``path``."""
    try:
        with np.load(path) as z:
            if int(z["version"][0]) != VERSION:
                raise UsageError(f"trace {path} has version {int(z['version'][0])}, expected {VERSION}")
            sl = slice(index, None, count)
            cols = {k: z[k][sl].copy() for k in ("offsets", "methods", "targets", "names", "headers", "bodies")}
            tables = json.loads(z["tables"].tobytes())
            blob, ends = z["body_blob"].tobytes(), z["body_ends"]
    except (OSError, KeyError, ValueError) as exc:
        raise UsageError(f"cannot read replay trace {path}: {exc}") from None
    starts = np.concatenate(([0], ends[:-1])) if len(ends) else ends
    return Trace(
        **cols, method_table=tables["methods"], target_table=tables["targets"], name_table=tables["names"],
        header_table=[{k: v for k, v in h} for h in tables["headers"]],
        body_table=[blob[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)],
    )


__all__ = ["Trace", "TraceBuilder", "load_trace"]
