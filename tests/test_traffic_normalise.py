"""URL -> endpoint template: examples and properties."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.traffic.normalise import ID, is_identifier, template


@pytest.mark.parametrize(("url", "expected"), [
    ("/products/17", "/products/{id}"),
    ("/products/17?ref=home#top", "/products/{id}"),
    ("/users/123/orders/9f8e7d6c5b4a39281706f5e4d3c2b1a0", "/users/{id}/orders/{id}"),
    ("/orders/550e8400-e29b-41d4-a716-446655440000/items", "/orders/{id}/items"),
    ("/files/12.json", "/files/{id}.json"),
    ("/commits/3f2a9c1d", "/commits/{id}"),            # short hash: hex with digits and letters
    ("/t/dGhpcyBpcyBhIHRva2Vu1", "/t/{id}"),           # base64-ish token
    ("/p/iphone-15-pro-max-256gb", "/p/{id}"),         # long slug with digits
    ("/api/v2/search", "/api/v2/search"),              # words and versions stay
    ("/deadbeef", "/deadbeef"),                        # hex letters only, short: a word
    ("/static/app.min.js", "/static/app.min.js"),
    ("/checkout", "/checkout"),
    ("/", "/"),
    ("", "/"),
    ("http://shop.example:8080/cart/42?x=1", "/cart/{id}"),
])
def test_examples(url, expected):
    assert template(url) == expected


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-", min_size=1, max_size=12)
ids = st.one_of(
    st.integers(min_value=0, max_value=10**12).map(str),
    st.uuids().map(str),
    st.binary(min_size=8, max_size=32).map(lambda b: b.hex()),
)
queries = st.one_of(st.just(""), st.text(alphabet="abc=&%0123456789", max_size=20).map(lambda q: "?" + q))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(words.map(lambda w: ("w", w)), ids.map(lambda i: ("id", i))), max_size=6), queries)
def test_ids_become_placeholders_words_stay(parts, query):
    path = "/" + "/".join(v for _, v in parts)
    out = template(path + query)
    segs = out.split("/")[1:]
    if parts:
        assert len(segs) == len(parts)  # one segment per segment
        for (kind, v), seg in zip(parts, segs, strict=True):
            assert seg == (ID if kind == "id" else v), (path, out)
    assert "?" not in out  # the query never reaches the name


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters="\x00"), max_size=60))
def test_idempotent_and_always_a_path(text):
    out = template(text)
    assert out.startswith("/")
    assert template(out) == out
    assert "?" not in out and "#" not in out


def test_uuid_any_case_and_placeholder_is_not_an_id():
    assert is_identifier(str(uuid.uuid4()).upper())
    assert not is_identifier(ID)
    assert not is_identifier("")
