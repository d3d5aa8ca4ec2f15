"""Log readers: combined, common, JSON lines, HAR; detection, malformed lines, bounded memory."""

from __future__ import annotations

import gzip
import tracemalloc

import pytest

from conftest import TESTS, assert_no_traceback, surge_cli
from surge.api.errors import UsageError
from surge.traffic.jsonl import parse_mapping
from surge.traffic.read import FORMATS, detect_format, open_log
from surge.traffic.workload import WorkloadBuilder

DATA = TESTS / "data" / "traffic"
JSON_FIELDS = {"time": "ts", "method": "verb", "path": "url", "status": "code", "client": "ip", "user_agent": "agent"}


def test_combined_log():
    log = open_log(DATA / "combined.log")
    recs = list(log)
    assert log.format == "combined"
    assert [(r.method, r.target, r.status) for r in recs] == [
        ("GET", "/products/17", 200), ("GET", "/products/42?ref=home", 200), ("POST", "/cart", 201),
        ("GET", "/search?q=wool", 200), ("GET", "/orders/550e8400-e29b-41d4-a716-446655440000", 404)]
    assert recs[0].time == 1696946136.0 and recs[2].client == "10.0.0.2" and recs[2].user_agent == "curl/8.0"
    s = log.stats
    assert (s.lines, s.parsed, s.malformed) == (7, 5, 1)
    assert s.examples[0][0] == 5 and "this line is not a log line" in s.examples[0][1]
    assert s.skipped == {"not an HTTP request line": 1}  # the TLS probe nginx logged as a 400


def test_common_log_with_timezone():
    log = open_log(DATA / "common.log")
    recs = list(log)
    assert log.format == "common"
    assert recs[0].time == 971211336.0  # 10/Oct/2000:13:55:36 -0700 is 20:55:36 UTC
    assert [r.method for r in recs] == ["GET", "GET", "DELETE"] and recs[2].status == 204
    assert recs[0].user_agent == ""


def test_msec_and_iso_times_in_brackets(tmp_path):
    p = tmp_path / "a.log"
    p.write_text('1.2.3.4 - - [1700000000.125] "GET /a HTTP/1.1" 200 1 "-" "x"\n'
                 '1.2.3.4 - - [2023-11-14T22:13:21+00:00] "GET /b HTTP/1.1" 200 1 "-" "x"\n')
    assert [r.time for r in open_log(p)] == [1700000000.125, 1700000001.0]


def test_jsonl_with_field_mapping():
    log = open_log(DATA / "mapped.jsonl", fields=JSON_FIELDS)
    recs = list(log)
    assert log.format == "jsonl"
    assert [r.time for r in recs] == [1700000000.25, 1700000000.5, 1700000001.0, 1700000002.0]  # s, ms, ISO, s
    assert recs[1].method == "POST" and recs[1].target == "/cart?x=1" and recs[1].status == 201
    assert recs[0].client == "10.1.1.1" and recs[0].user_agent == "a"
    assert (recs[3].method, recs[3].target) == ("GET", "/products/9")  # from a "request" field
    assert log.stats.malformed == 2
    assert [n for n, _ in log.stats.examples] == [4, 5]
    assert "no time field" in log.stats.examples[0][1]


def test_jsonl_default_names_and_nested_keys(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"timestamp": "2024-01-01T00:00:00Z", "method": "GET", "path": "/a", "status": 200}\n'
                 '{"timestamp": 1704067201000, "http": {"verb": "PUT"}, "path": "/b"}\n')
    recs = list(open_log(p, fields={"method": "http.verb"}))
    assert [(r.time, r.method, r.target) for r in recs] == [(1704067200.0, "GET", "/a"), (1704067201.0, "PUT", "/b")]


def test_field_mapping_errors():
    with pytest.raises(UsageError, match="unknown --field 'when'"):
        parse_mapping("when=ts")
    with pytest.raises(UsageError, match="FIELD=KEY"):
        parse_mapping("time")
    with pytest.raises(UsageError, match="--field applies to JSON-lines"):
        open_log(DATA / "combined.log", fields={"time": "ts"})


def test_har_entries_headers_bodies_and_skips():
    log = open_log(DATA / "chrome.har")
    recs = list(log)
    assert log.format == "har"
    assert [(r.method, r.target) for r in recs] == [
        ("GET", "/products?page=2"), ("POST", "/cart"), ("GET", "/products/9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
        ("GET", "/app.js")]
    assert log.stats.skipped == {"binary body (file upload)": 1, "websocket": 1, "data: URL": 1}
    assert log.stats.malformed == 0
    first, cart = recs[0], recs[1]
    assert first.origin == "http://127.0.0.1:8000" and recs[3].origin == "https://cdn.example.com"
    assert cart.time - first.time == pytest.approx(0.25)
    assert cart.body == b'{"product_id": 7, "quantity": 1}'
    names = [k.lower() for k, _ in first.headers + cart.headers]
    for dropped in ("host", "connection", "cookie", "content-length", ":authority"):
        assert dropped not in names
    assert ("X-Request-Id", "r-1") in cart.headers
    assert first.session == "abc123"  # the session cookie identifies the user


def test_har_binary_post_text_and_form_params(tmp_path):
    import json

    entry = {"startedDateTime": "2024-03-01T10:00:00Z", "request": {"method": "POST", "url": "http://h/x", "headers": []}}
    bodies = [
        {"mimeType": "application/octet-stream", "text": "abc"},
        {"mimeType": "text/plain", "text": "bin\x00ary"},
        {"mimeType": "application/x-www-form-urlencoded", "params": [{"name": "a", "value": "1 2"}]},
    ]
    entries = [{**entry, "request": {**entry["request"], "postData": b}} for b in bodies]
    p = tmp_path / "b.har"
    p.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}))
    log = open_log(p)
    recs = list(log)
    assert log.stats.skipped == {"binary body": 2}
    assert recs[0].body == b"a=1+2" and ("Content-Type", "application/x-www-form-urlencoded") in recs[0].headers


def test_detection():
    assert detect_format(DATA / "combined.log") == "combined"
    assert detect_format(DATA / "common.log") == "common"
    assert detect_format(DATA / "mapped.jsonl") == "jsonl"
    assert detect_format(DATA / "chrome.har") == "har"


def test_gzip_log(tmp_path):
    p = tmp_path / "access.log.gz"
    with gzip.open(p, "wt") as f:
        f.write((DATA / "combined.log").read_text())
    assert len(list(open_log(p))) == 5


def test_empty_unknown_and_unreadable_logs(tmp_path):
    empty = tmp_path / "empty.log"
    empty.write_text("")
    with pytest.raises(UsageError, match=r"empty\.log is empty"):
        open_log(empty)
    blank = tmp_path / "blank.log"
    blank.write_text("\n\n  \n")
    with pytest.raises(UsageError, match="is empty"):
        list(open_log(blank, "combined"))
    prose = tmp_path / "notes.txt"
    prose.write_text("dear diary\ntoday I load tested\n")
    with pytest.raises(UsageError) as e:
        open_log(prose)
    assert "cannot tell the format" in str(e.value) and all(f in str(e.value) for f in FORMATS)
    with pytest.raises(UsageError, match="unknown log format 'xml'"):
        open_log(DATA / "combined.log", "xml")
    with pytest.raises(UsageError) as e:  # readable file, zero parseable lines
        list(open_log(prose, "combined"))
    assert "no readable request in" in str(e.value) and "notes.txt" in str(e.value) and "line 1" in str(e.value)
    with pytest.raises(UsageError, match="not found"):
        open_log(tmp_path / "nope.log")


def test_cli_reports_malformed_lines_and_errors_without_traceback(tmp_path):
    r = surge_cli("model", str(DATA / "combined.log"))
    assert r.rc == 0, r
    assert "1 malformed line(s)" in r.stdout and "line 5:" in r.stdout
    prose = tmp_path / "notes.txt"
    prose.write_text("dear diary\n")
    for args, text in [(("model", str(prose)), "cannot tell the format"),
                       (("model", str(prose), "--format", "jsonl"), "no readable request"),
                       (("model", str(DATA / "combined.log"), "--format", "xml"), "Invalid value")]:
        r = surge_cli(*args)
        assert r.rc == 2, r
        assert text in r.stderr
        assert_no_traceback(r.stderr)


def test_large_log_is_streamed_in_bounded_memory(tmp_path):
    p = tmp_path / "big.log"
    n = 60_000
    tail = "&".join(f"utm_{k}=spring-sale-newsletter" for k in range(8))  # long lines: a big file, few lines
    agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36"
    with p.open("w") as f:  # about 25 MB
        for i in range(n):
            f.write(f'10.0.{i % 50}.{i % 200} - - [{1_700_000_000 + i / 1000:.3f}] "GET /products/{i}?q={i} HTTP/1.1" '
                    f'200 {i % 900} "https://shop.example/search?q={i}&{tail}" '
                    f'"{agent} {i % 7}"\n')
    size = p.stat().st_size
    b = WorkloadBuilder()
    tracemalloc.start()
    try:
        log = open_log(p)
        for rec in log:
            b.add(rec)
        w = b.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert log.stats.parsed == n and w.requests == n
    assert w.endpoints[0].template == "/products/{id}"
    assert size > 20_000_000
    # bounded: counters, open sessions and fixed-size samples, not the lines
    assert peak < size / 5, (peak, size)


GOOD_LINE = '127.0.0.1 - - [10/Oct/2024:13:55:{s:02d} +0000] "GET /p/{s} HTTP/1.1" 200 12 "-" "curl"\n'


def test_a_line_with_a_wrong_clock_is_a_clear_error_not_a_dense_array(tmp_path):
    # One line dated 2099 in a 2024 log: the rate curve was a dense array of every second
    # in between (18 GB). Now bucketed from sparse counts, and a span over 31 days is a
    # usage error that names both ends.
    log = tmp_path / "future.log"
    log.write_text("".join(GOOD_LINE.format(s=s) for s in range(5))
                   + '127.0.0.1 - - [10/Oct/2099:13:55:00 +0000] "GET /future HTTP/1.1" 200 12 "-" "curl"\n')
    b = WorkloadBuilder()
    with pytest.raises(UsageError, match=r"span 27,393 days \(2024-10-10T13:55:00Z to 2099-10-10T13:55:00Z\)"):
        for rec in open_log(log):
            b.add(rec)
        b.finish()


def test_a_week_of_sparse_traffic_is_bucketed_without_a_dense_array():
    from surge.traffic.rates import RateCounter, rate_curve

    c = RateCounter()
    for day in range(7):
        for i in range(100):
            c.add(1_700_000_000 + day * 86_400 + i)
    curve = rate_curve(c)
    assert curve.bucket_s == 3600 and c.busiest_second() == 1
    assert sum(r > 0 for r in curve.rates) == 7  # one busy hour a day, the rest zeros


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e300", "-1e300"])
def test_jsonl_times_that_are_not_clocks_are_malformed_lines(tmp_path, value):
    log = tmp_path / "t.jsonl"
    log.write_text('{"time": 1700000000, "path": "/a"}\n'
                   f'{{"time": {value}, "path": "/b"}}\n'
                   '{"time": 1700000001, "path": "/c", "status": 1e400}\n')
    src = open_log(log)
    recs = list(src)
    assert [r.target for r in recs] == ["/a"]
    assert src.stats.malformed == 2 and "not a usable timestamp" in str(src.stats.examples)


def test_har_with_a_body_text_that_is_a_number_is_a_malformed_entry(tmp_path):
    import json

    entry = {"startedDateTime": "2024-10-10T13:55:00Z",
             "request": {"method": "POST", "url": "http://127.0.0.1/x", "headers": [],
                         "postData": {"mimeType": "text/plain", "text": 123}}}
    ok = {"startedDateTime": "2024-10-10T13:55:01Z", "request": {"method": "GET", "url": "http://127.0.0.1/y"}}
    har = tmp_path / "odd.har"
    har.write_text(json.dumps({"log": {"entries": [entry, ok]}}))
    src = open_log(har)
    assert [r.target for r in src] == ["/y"] and src.stats.malformed == 1


def test_a_truncated_gzip_log_is_a_usage_error(tmp_path):
    full = tmp_path / "full.log.gz"
    with gzip.open(full, "wt") as f:
        for i in range(3000):
            f.write(GOOD_LINE.replace("/p/{s}", f"/p/{i * 7919 % 100_003}").format(s=i % 60))
    cut = tmp_path / "cut.log.gz"
    data = full.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(UsageError, match="truncated or corrupt"):
        list(open_log(cut))
    r = surge_cli("model", str(cut))
    assert r.rc == 2 and "truncated or corrupt" in r.stderr, r
    assert_no_traceback(r.stderr)


def test_entries_that_cannot_be_sent_as_logged_are_malformed_not_iteration_errors(tmp_path):
    import json

    def entry(method="GET", url="http://127.0.0.1/ok", headers=()):
        return {"startedDateTime": "2024-10-10T13:55:00Z",
                "request": {"method": method, "url": url, "headers": [{"name": k, "value": v} for k, v in headers]}}

    har = tmp_path / "odd.har"
    har.write_text(json.dumps({"log": {"entries": [
        entry(headers=[("X-A", "a\r\nX-Injected: 1")]), entry(method="GE T"), entry(url="http://127.0.0.1/a b"),
        entry(headers=[("Bad Name", "1")]), entry()]}}))
    src = open_log(har)
    assert [r.target for r in src] == ["/ok"]
    assert src.stats.malformed == 4
    # With nothing sendable, replay stops before any load with one line (it sent 0 requests, exit 0).
    only_bad = tmp_path / "bad.har"
    only_bad.write_text(json.dumps({"log": {"entries": [entry(method="GE T")]}}))
    r = surge_cli("replay", str(only_bad), "--no-save", "-d", "2s")
    assert r.rc == 2 and "no readable request" in r.stderr, r
    assert_no_traceback(r.stderr)


def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path):
    line = '10.0.0.9 - - [10/Oct/2024:13:55:00 +0000] "GET /a HTTP/1.1" 200 12 "-" "curl"\n'
    log = tmp_path / "bom.log"
    log.write_bytes(b"\xef\xbb\xbf" + (line * 2).encode())
    assert [r.client for r in open_log(log)] == ["10.0.0.9", "10.0.0.9"]
    har = tmp_path / "bom.har"
    har.write_bytes(b"\xef\xbb\xbf" + b'{"log": {"entries": [{"startedDateTime": "2024-10-10T13:55:00Z", '
                    b'"request": {"method": "GET", "url": "http://127.0.0.1/x"}}]}}')
    assert open_log(har).format == "har"


def test_utf16_logs_are_named_as_such(tmp_path):
    log = tmp_path / "win.log"
    log.write_bytes('10.0.0.9 - - [10/Oct/2024:13:55:00 +0000] "GET /a HTTP/1.1" 200 12\n'.encode("utf-16"))
    with pytest.raises(UsageError, match="UTF-16 text: convert it to UTF-8"):
        open_log(log)


@pytest.mark.parametrize("url", ["http:///x", "http://127.0.0.1:99999/x", "http://127.0.0.1:0/x"])
def test_har_urls_without_a_usable_host_are_malformed_entries(tmp_path, url):
    import json

    def entry(u):
        return {"startedDateTime": "2024-10-10T13:55:00Z", "request": {"method": "GET", "url": u}}

    har = tmp_path / "u.har"
    har.write_text(json.dumps({"log": {"entries": [entry(url), entry("http://127.0.0.1:8000/ok")]}}))
    src = open_log(har)
    assert [r.target for r in src] == ["/ok"] and src.stats.malformed == 1


def test_a_forty_day_log_is_still_modelled():
    from surge.traffic.rates import RateCounter, rate_curve

    c = RateCounter()
    for day in range(40):
        c.add(1_700_000_000 + day * 86_400)
    curve = rate_curve(c)
    assert curve.stages and abs(sum(d for d, _ in curve.stages) - 39 * 86_400) < 2 * 86_400
