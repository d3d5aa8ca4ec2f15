"""Feeders: strategies, the unique split across workers, and bad input files."""

from __future__ import annotations

import contextvars
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import assert_no_traceback, error_lines, surge_json
from surge import Feeder, FeederExhausted, UsageError
from surge.api.context import WorkerInfo, current_worker
from surge.api.feeders import unique_index, unique_share
from surge.api.scenario import VU
from surge.engine.runtime import Runtime, Share

ROWS = [{"id": str(i)} for i in range(5)]


def draws(feeder: Feeder, n: int) -> list[str]:
    return [feeder.next()["id"] for _ in range(n)]


def in_worker(index: int, count: int, seed: int = 0) -> contextvars.Context:
    """A context in which code sees itself as worker ``index`` of ``count``, as a worker process does."""
    ctx = contextvars.copy_context()
    ctx.run(current_worker.set, WorkerInfo(index, count, seed))
    return ctx


# --------------------------------------------------------------------------- strategies


def test_sequential_is_file_order_once_then_exhausted():
    f = Feeder(ROWS, strategy="sequential")
    assert draws(f, 5) == ["0", "1", "2", "3", "4"]
    with pytest.raises(FeederExhausted, match="sequential"):
        f.next()


def test_sequential_is_per_worker():
    # Documented: every worker walks the whole file from row 0.
    for w in range(3):
        f = Feeder(ROWS, strategy="sequential")
        assert in_worker(w, 3).run(draws, f, 5) == ["0", "1", "2", "3", "4"]


def test_circular_wraps_and_workers_start_spread_out():
    f = Feeder(ROWS, strategy="circular")
    assert draws(f, 12) == ["0", "1", "2", "3", "4", "0", "1", "2", "3", "4", "0", "1"]
    g = Feeder(ROWS, strategy="circular")
    assert in_worker(1, 2).run(draws, g, 6) == ["2", "3", "4", "0", "1", "2"]


def test_shuffle_gives_every_row_once_per_pass():
    rows = [{"id": str(i)} for i in range(50)]
    f = Feeder(rows, strategy="shuffle", seed=3)
    got = draws(f, 150)
    passes = [got[i:i + 50] for i in range(0, 150, 50)]
    for p in passes:
        assert sorted(p, key=int) == [str(i) for i in range(50)]
    assert passes[0] != [str(i) for i in range(50)]  # actually shuffled
    assert passes[0] != passes[1]  # a fresh order each pass


def test_random_is_reproducible_with_a_seed():
    rows = [{"id": str(i)} for i in range(1000)]
    a = draws(Feeder(rows, strategy="random", seed=7), 30)
    b = draws(Feeder(rows, strategy="random", seed=7), 30)
    c = draws(Feeder(rows, strategy="random", seed=8), 30)
    assert a == b
    assert a != c
    # Without an explicit seed the run seed decides: same run seed, same draws.
    d = in_worker(0, 1, seed=42).run(draws, Feeder(rows, strategy="random"), 30)
    e = in_worker(0, 1, seed=42).run(draws, Feeder(rows, strategy="random"), 30)
    assert d == e


def test_next_returns_a_copy():
    f = Feeder(ROWS, strategy="circular")
    f.next()["id"] = "changed"
    assert [f.next()["id"] for _ in range(5)][-1] == "0"


def test_unknown_strategy():
    with pytest.raises(UsageError, match="unknown feeder strategy 'roundrobin'"):
        Feeder(ROWS, strategy="roundrobin")


# --------------------------------------------------------------------------- unique across workers


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(1, 60),
    workers=st.integers(1, 8),
    vus_per_worker=st.integers(1, 5),
    schedule=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 4)), max_size=150),
)
def test_unique_never_repeats_a_row_across_workers(rows, workers, vus_per_worker, schedule):
    """Any interleaving of draws by any VU of any worker: no row twice, and a worker
    is refused only once its own share of the rows is used up."""
    data = [{"id": str(i)} for i in range(rows)]
    feeders = [Feeder(data, strategy="unique") for _ in range(workers)]  # one copy per process
    ctxs = [in_worker(w, workers) for w in range(workers)]
    seen: list[str] = []
    taken = [0] * workers
    for w, _vu in schedule:
        w %= workers
        try:
            seen.append(ctxs[w].run(lambda f=feeders[w]: f.next()["id"]))
            taken[w] += 1
        except FeederExhausted:
            assert taken[w] == unique_share(rows, w, workers)
    assert len(seen) == len(set(seen))
    assert sum(unique_share(rows, w, workers) for w in range(workers)) == rows


@settings(max_examples=100, deadline=None)
@given(rows=st.integers(1, 200), workers=st.integers(1, 16))
def test_unique_shares_partition_the_rows(rows, workers):
    owned = [unique_index(k, w, workers) for w in range(workers) for k in range(unique_share(rows, w, workers))]
    assert sorted(owned) == list(range(rows))


@settings(max_examples=100, deadline=None)
@given(workers=st.integers(1, 8), vus=st.lists(st.integers(0, 12), min_size=1, max_size=8))
def test_for_vu_rows_are_disjoint_across_workers(workers, vus):
    """VU ids come from the engine's allocator; their rows never collide."""
    data = [{"id": str(i)} for i in range(200)]
    f = Feeder(data)
    got = []
    for w in range(workers):
        rt = Runtime(scenarios=(), recorder=None, make_client=lambda: None, share=Share(w, workers))
        for _ in range(vus[w % len(vus)]):
            got.append(f.for_vu(rt.new_vu().vu)["id"])
    assert len(got) == len(set(got))


def test_for_vu_beyond_the_rows_is_exhausted():
    f = Feeder(ROWS)
    assert f.for_vu(VU(id=5))["id"] == "4"
    with pytest.raises(FeederExhausted, match="too few for VU 6"):
        f.for_vu(VU(id=6))


# --------------------------------------------------------------------------- files


def test_csv_json_jsonl_load_the_same_rows(tmp_path):
    (tmp_path / "u.csv").write_text("user,password\nann,1\n\nbob,\"x,y\"\n")
    (tmp_path / "u.json").write_text(json.dumps([{"user": "ann", "password": "1"}, {"user": "bob", "password": "x,y"}]))
    (tmp_path / "u.jsonl").write_text('{"user": "ann", "password": "1"}\n\n{"user": "bob", "password": "x,y"}\n')
    want = [{"user": "ann", "password": "1"}, {"user": "bob", "password": "x,y"}]
    for load, name in ((Feeder.csv, "u.csv"), (Feeder.json, "u.json"), (Feeder.jsonl, "u.jsonl")):
        f = load(tmp_path / name, columns=["user", "password"])
        assert list(f) == want, name
        assert len(f) == 2


def test_relative_path_is_beside_the_scenario_file(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "u.csv").write_text("user\nann\n")
    mod = tmp_path / "scen.py"
    mod.write_text("from surge import Feeder\nusers = Feeder.csv('data/u.csv')\n")
    monkeypatch.chdir("/")
    ns: dict = {"__file__": str(mod)}
    exec(compile(mod.read_text(), str(mod), "exec"), ns)
    assert ns["users"].next() == {"user": "ann"}


BAD_FILES = [
    ("missing.csv", None, "csv", ["not found"]),
    ("empty.csv", "", "csv", ["is empty"]),
    ("header.csv", "user,password\n", "csv", ["no data rows"]),
    ("short.csv", "user,password\nann,1\nbob\n", "csv", ["line 3", "1 field(s) where the header has 2"]),
    ("quote.csv", 'user,password\nann,"1\n', "csv", ["line 2", "malformed CSV"]),
    ("cols.csv", "user,pass\nann,1\n", "csv", ["line 1", "missing column(s) password"]),
    ("dup.csv", "user,user\nann,1\n", "csv", ["line 1", "duplicate column(s) user"]),
    ("bad.json", '[\n{"user": "a", "password": 1},\n{"user": }\n]', "json", ["line 3", "invalid JSON"]),
    ("obj.json", '{"user": "a"}', "json", ["not an array"]),
    ("empty.json", "[]", "json", ["empty array"]),
    ("item.json", '[{"user": "a", "password": 1}, 3]', "json", ["item 1", "not an object"]),
    ("keys.json", '[{"user": "a", "password": 1}, {"user": "b"}]', "json", ["item 1", "missing column(s) password"]),
    ("bad.jsonl", '{"user": "a", "password": 1}\n{"user": "b", "password": 2\n', "jsonl", ["line 2", "invalid JSON"]),
    ("list.jsonl", '{"user": "a", "password": 1}\n[1]\n', "jsonl", ["line 2", "not an object"]),
    ("blank.jsonl", "\n\n", "jsonl", ["is empty"]),
    ("latin.csv", "user,password\nann,\xe9\n", "csv", ["line 2", "not valid utf-8"]),
]


@pytest.mark.parametrize(("name", "content", "kind", "fragments"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_is_one_line_naming_file_and_fix(tmp_path, name, content, kind, fragments):
    p = tmp_path / name
    if content is not None:
        p.write_bytes(content.encode("latin-1"))
    with pytest.raises(UsageError) as exc:
        getattr(Feeder, kind)(p, columns=["user", "password"])
    msg = str(exc.value)
    assert "\n" not in msg
    assert str(p) in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


def test_bad_feeder_file_stops_surge_run_before_load(tmp_path, scenario_file, start_server):
    srv = start_server()
    (tmp_path / "users.csv").write_text("user,password\nann,1\nbob\n")
    path = scenario_file("""
        from surge import Feeder

        users = Feeder.csv("users.csv", columns=["user", "password"])

        async def visit(client):
            await client.get("/", name="/")
    """)
    rc, _, err = surge_json("run", path, "--vus", "1", "-d", "1s", "-w", "2", "--base-url", srv.url)
    assert rc == 2, err
    assert_no_traceback(err)
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert str(tmp_path / "users.csv") in lines[0] and "line 3" in lines[0], lines[0]
    assert srv.stats().get("/", 0) == 0  # no load was sent


# --------------------------------------------------------------------------- a real run


class _Recorder(BaseHTTPRequestHandler):
    """Answers 200 and records the ``n`` query parameter of every request."""

    protocol_version = "HTTP/1.1"
    received: list[str]

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.received.extend(parse_qs(urlsplit(self.path).query).get("n", []))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recording_server():
    """(base URL, list of the ``n`` values received), served from a thread on 127.0.0.1."""
    received: list[str] = []
    handler = type("Handler", (_Recorder,), {"received": received})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", received
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def test_unique_rows_across_two_workers_in_a_real_run(tmp_path, scenario_file, recording_server):
    """60 rows, 80 iterations over 2 workers x 2 VUs: each row reaches the server
    exactly once; the VUs that run out stop (a few FeederExhausted, not 20)."""
    url, received = recording_server
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"n": i}) + "\n" for i in range(60)))
    path = scenario_file("""
        from surge import Feeder

        rows = Feeder.jsonl("rows.jsonl", strategy="unique", columns=["n"])

        async def take(client):
            row = rows.next()
            await client.get("/row", params={"n": row["n"]}, name="/row")
    """)
    rc, s, err = surge_json("run", path, "--vus", "4", "--iterations", "80", "-w", "2",
                            "--base-url", url, "--max-duration", "20s")
    assert rc == 0, err
    assert_no_traceback(err)
    assert sorted(received, key=int) == [str(i) for i in range(60)]  # every row, none twice
    assert s["requests"] == 60
    exhausted = s["iterations"]["errors"].get("FeederExhausted", 0)
    assert 1 <= exhausted <= 4, s["iterations"]


# --------------------------------------------------------------------------- generated data (surge.fake)


def test_fake_per_vu_streams_are_reproducible_and_independent():
    from surge.api.fake import FakeData

    def names(seed: int, interleave: bool) -> list[str]:
        fake = FakeData()
        v1, v2 = VU(id=1), VU(id=2)

        def run() -> list[str]:
            out = []
            for _ in range(5):
                out.append(fake(v1).name())
                if interleave:
                    fake(v2).email()  # another VU drawing in between changes nothing for v1
            return out

        return in_worker(0, 2, seed=seed).run(run)

    assert names(1, False) == names(1, True)
    assert names(1, False) != names(2, False)


def test_fake_worker_stream_and_lazy_import():
    import subprocess
    import sys

    from surge.api.fake import FakeData

    def cities(seed: int) -> list[str]:
        fake = FakeData()
        return in_worker(1, 2, seed=seed).run(lambda: [fake.city() for _ in range(4)])

    assert cities(5) == cities(5)
    assert cities(5) != cities(6)
    code = "import sys, surge; from surge import fake; assert 'faker' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
