"""The PHP-style nested form parser: Mailchimp's real keys, the edge cases, and never raising."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from hypothesis import given, settings
from hypothesis import strategies as st

from app.audience.forms import MAX_DEPTH, parse_php_form, split_key


def parse(query: str) -> dict[str, Any]:
    return parse_php_form(parse_qsl(query, keep_blank_values=True))


def test_mailchimp_subscribe_body() -> None:
    body = (
        "type=subscribe&fired_at=2009-03-26+21%3A35%3A57&data%5Bid%5D=8a25ff1d98"
        "&data%5Blist_id%5D=a6b5da1054&data%5Bemail%5D=api%40mailchimp.com"
        "&data%5Bemail_type%5D=html&data%5Bmerges%5D%5BEMAIL%5D=api%40mailchimp.com"
        "&data%5Bmerges%5D%5BFNAME%5D=Mailchimp&data%5Bmerges%5D%5BLNAME%5D=API"
        "&data%5Bmerges%5D%5BINTERESTS%5D=Group1%2CGroup2&data%5Bip_opt%5D=10.20.10.30"
        "&data%5Bip_signup%5D=10.20.10.30"
    )
    assert parse(body) == {
        "type": "subscribe",
        "fired_at": "2009-03-26 21:35:57",
        "data": {
            "id": "8a25ff1d98",
            "list_id": "a6b5da1054",
            "email": "api@mailchimp.com",
            "email_type": "html",
            "merges": {
                "EMAIL": "api@mailchimp.com",
                "FNAME": "Mailchimp",
                "LNAME": "API",
                "INTERESTS": "Group1,Group2",
            },
            "ip_opt": "10.20.10.30",
            "ip_signup": "10.20.10.30",
        },
    }


def test_groupings_with_indexes_0_to_n_become_a_list() -> None:
    form = parse(
        "data[merges][GROUPINGS][0][id]=1&data[merges][GROUPINGS][0][name]=Interests"
        "&data[merges][GROUPINGS][0][groups]=A,B"
        "&data[merges][GROUPINGS][1][id]=2&data[merges][GROUPINGS][1][name]=Region"
        "&data[merges][GROUPINGS][1][groups]=EU"
    )
    assert form["data"]["merges"]["GROUPINGS"] == [
        {"id": "1", "name": "Interests", "groups": "A,B"},
        {"id": "2", "name": "Region", "groups": "EU"},
    ]


def test_indexes_in_any_order_still_make_a_list_in_index_order() -> None:
    assert parse("a[1]=second&a[0]=first") == {"a": ["first", "second"]}


def test_numeric_keys_that_are_not_exactly_0_to_n_stay_string_keys() -> None:
    assert parse("a[1]=x") == {"a": {"1": "x"}}
    assert parse("a[0]=x&a[2]=y") == {"a": {"0": "x", "2": "y"}}
    assert parse("a[0]=x&a[b]=y") == {"a": {"0": "x", "b": "y"}}
    assert parse("a[01]=x") == {"a": {"01": "x"}}
    assert parse("a[-1]=x") == {"a": {"-1": "x"}}


def test_empty_brackets_append() -> None:
    assert parse("a[]=x&a[]=y") == {"a": ["x", "y"]}
    assert parse("a[5]=x&a[]=y") == {"a": {"5": "x", "6": "y"}}
    assert parse("a[k]=x&a[]=y") == {"a": {"k": "x", "0": "y"}}
    assert parse("a[][b]=x&a[][b]=y") == {"a": [{"b": "x"}, {"b": "y"}]}


def test_last_value_wins_like_php() -> None:
    assert parse("type=a&type=b") == {"type": "b"}
    assert parse("a=1&a[b]=2") == {"a": {"b": "2"}}
    assert parse("a[b]=2&a=1") == {"a": "1"}
    assert parse("a[b]=1&a[b][c]=2") == {"a": {"b": {"c": "2"}}}


def test_values_stay_strings_and_blank_values_are_kept() -> None:
    assert parse("a[b]=&c=0") == {"a": {"b": ""}, "c": "0"}


def test_malformed_keys_are_kept_literally() -> None:
    for key in ["a[b", "a]b", "a[b]c", "a[b[c]]", "[a]", "[]", "", "a[b]]", "]"]:
        assert parse_php_form([(key, "v")]) == {key: "v"}, key


def test_malformed_and_well_formed_keys_do_not_collide() -> None:
    assert parse_php_form([("a[b", "1"), ("a", "2")]) == {"a[b": "1", "a": "2"}


def test_depth_is_bounded() -> None:
    deep_ok = "a" + "[x]" * MAX_DEPTH
    too_deep = "a" + "[x]" * (MAX_DEPTH + 1)
    assert split_key(deep_ok) is not None
    assert split_key(too_deep) is None
    assert parse_php_form([(too_deep, "v")]) == {too_deep: "v"}


def test_split_key() -> None:
    assert split_key("data[merges][GROUPINGS][0][groups]") == [
        "data",
        "merges",
        "GROUPINGS",
        "0",
        "groups",
    ]
    assert split_key("a[]") == ["a", None]
    assert split_key("a[ b ]") == ["a", " b "]
    assert split_key("a.b c") == ["a.b c"]


def test_top_level_numeric_keys_are_never_a_list() -> None:
    assert parse("0=a&1=b") == {"0": "a", "1": "b"}


_key_parts = st.text(alphabet=st.sampled_from("ab0123[]-. "), max_size=12)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.one_of(_key_parts, st.text(max_size=20)), st.text(max_size=10))))
def test_never_raises_and_returns_a_dict(pairs: list[tuple[str, str]]) -> None:
    result = parse_php_form(pairs)
    assert isinstance(result, dict)
    assert all(isinstance(key, str) for key in result)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(["0", "1", "2", "x", ""]), min_size=1, max_size=5).map(
                lambda segs: "k" + "".join(f"[{s}]" for s in segs)
            ),
            st.text(max_size=5),
        ),
        max_size=30,
    )
)
def test_every_leaf_is_a_string_and_containers_are_dicts_or_lists(
    pairs: list[tuple[str, str]],
) -> None:
    def check(node: Any) -> None:
        if isinstance(node, dict):
            assert node, "no empty containers are made"
            for child in node.values():
                check(child)
        elif isinstance(node, list):
            assert node
            for child in node:
                check(child)
        else:
            assert isinstance(node, str)

    for child in parse_php_form(pairs).values():
        check(child)
