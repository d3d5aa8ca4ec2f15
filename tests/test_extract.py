"""Extraction helpers: the JSON path subset, regex, headers, missing values, a real run."""

from __future__ import annotations

import json

import pytest

from conftest import assert_no_traceback, surge_json
from surge import ExtractionError, Response, UsageError, extract

DOC = {
    "data": {
        "items": [{"id": 11, "tags": ["a", "b"]}, {"id": 12, "tags": []}, {"id": 13, "tags": ["c"]}],
        "user.name": "ann",
        "token": "t0k",
        "empty": None,
    },
}


def response(body: bytes | str, headers: list[tuple[bytes, bytes]] | None = None, status: int = 200) -> Response:
    content = body.encode() if isinstance(body, str) else body
    return Response(status, headers or [], content, "http://127.0.0.1/x", "GET", 0.001)


JSON_R = response(json.dumps(DOC))


@pytest.mark.parametrize(("path", "want"), [
    ("$.data.token", "t0k"),
    ("data.token", "t0k"),  # the $ is optional
    ("$.data.items[0].id", 11),
    ("$.data.items[-1].id", 13),
    ("$.data.items[*].id", [11, 12, 13]),
    ("$.data.items[*].tags[0]", ["a", "c"]),  # items without a first tag are skipped
    ("$.data.items[*].tags[*]", ["a", "b", "c"]),  # a second wildcard flattens
    ("$.data['user.name']", "ann"),
    ('$["data"]["token"]', "t0k"),
    ("$.data.empty", None),  # present and null: null, not the default
    ("$", DOC),
])
def test_json_path_subset(path, want):
    assert extract.json(JSON_R, path, default="missing") == want


def test_json_path_on_an_already_parsed_value():
    assert extract.json(DOC["data"], "$.items[1].id") == 12
    assert extract.json([{"a": 1}, {"a": 2}], "$[*].a") == [1, 2]


@pytest.mark.parametrize("path", ["$.data.nope", "$.data.items[3].id", "$.data.token[0]", "$.data.items.id",
                                  "$.data.token[*]", "$.data.items[*].nope"])
def test_json_missing_gives_default_or_raises_when_required(path):
    assert extract.json(JSON_R, path) is None
    assert extract.json(JSON_R, path, "fallback") == "fallback"
    with pytest.raises(ExtractionError, match="nothing at"):
        extract.json(JSON_R, path, required=True)


def test_json_of_a_body_that_is_not_json():
    r = response("<html>")
    assert extract.json(r, "$.a", 0) == 0
    with pytest.raises(ExtractionError, match="no JSON body"):
        extract.json(r, "$.a", required=True)


@pytest.mark.parametrize("path", ["$..token", "$.data[", "$.data.items[x]", "$ data"])
def test_json_invalid_path_is_a_usage_error(path):
    with pytest.raises(UsageError, match="invalid JSON path"):
        extract.json(JSON_R, path)


def test_regex_first_group_whole_match_and_named_group():
    r = response('<input name="csrf" value="abc123"><input name="csrf" value="zzz">')
    assert extract.regex(r, r'name="csrf" value="([^"]+)"') == "abc123"
    assert extract.regex(r, r"abc\d+") == "abc123"
    assert extract.regex(r, r'value="(?P<v>z+)"', group="v") == "zzz"
    assert extract.regex("plain text 42", r"(\d+)") == "42"


def test_regex_missing():
    r = response("nothing here")
    assert extract.regex(r, r"csrf=(\w+)") is None
    assert extract.regex(r, r"csrf=(\w+)", "none") == "none"
    with pytest.raises(ExtractionError, match="no match"):
        extract.regex(r, r"csrf=(\w+)", required=True)
    with pytest.raises(UsageError, match="no group 2"):
        extract.regex(response("a=1"), r"a=(\d)", group=2)


def test_header_any_case_and_missing():
    r = response("", [(b"Location", b"/next"), (b"X-Id", b"1"), (b"x-id", b"2")])
    assert extract.header(r, "location") == "/next"
    assert extract.header(r, "LOCATION") == "/next"
    assert extract.header(r, "X-Id") == "1, 2"
    assert extract.header(r, "ETag") is None
    assert extract.header(r, "ETag", "none") == "none"
    with pytest.raises(ExtractionError, match="no ETag header"):
        extract.header(r, "ETag", required=True)


def test_required_extraction_is_counted_as_an_iteration_error(test_server, scenario_file):
    """Correlation against /echo (it answers JSON of the request): a token taken from one
    response is sent in the next; a required value that is missing ends the iteration."""
    path = scenario_file("""
        from surge import check, extract

        async def flow(client, vu):
            if "token" not in vu.state:
                r = await client.get("/echo", params={"t": f"tok{vu.id}"}, name="/echo")
                vu.state["token"] = extract.regex(extract.json(r, "$.url"), r"t=(\\w+)", required=True)
            r = await client.get("/echo", headers={"X-Token": vu.state["token"]}, name="/echo")
            check(extract.json(r, "$.headers['x-token']") == f"tok{vu.id}", "token sent back")
            extract.json(r, "$.no.such.key", required=True)
    """)
    rc, s, err = surge_json("run", path, "--model", "per-vu-iterations", "--vus", "2", "--iterations", "3",
                            "-w", "1", "--base-url", test_server)
    assert rc == 0, err
    assert_no_traceback(err)
    assert {c["name"]: (c["passes"], c["fails"]) for c in s["checks"]} == {"token sent back": (6, 0)}
    assert s["iterations"]["errors"] == {"ExtractionError": 6}


def test_login_flow_example_runs_clean_against_the_demo(tmp_path):
    """examples/login_flow.py: a per-VU session (cart id) extracted and sent back, CSV feeder beside it."""
    from pathlib import Path

    from conftest import surge_cli

    example = Path(__file__).resolve().parent.parent / "examples" / "login_flow.py"
    res = surge_cli("demo", "run", example, "--duration", "2s", "--json", cwd=tmp_path, timeout=90)
    assert res.rc == 0, res.stderr
    assert_no_traceback(res.stderr)
    s = res.data
    assert s["errors"] == 0 and s["iterations"]["errors"] == {}, s["iterations"]
    checks = {c["name"]: (c["passes"], c["fails"]) for c in s["checks"]}
    assert checks["open cart: 201"][0] > 0 and checks["add to cart: 200"][0] > 0, checks
    assert all(fails == 0 for _, fails in checks.values()), checks
