"""Hypothesis strategies for hostile Mandrill payloads, shared by the fuzz tests."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from app.mandrill.classify import MESSAGE_EVENTS

# Text as a JSON decoder can hand it over: any code point, lone surrogates and NUL included.
hostile_chars = (
    st.characters()
    | st.characters(categories=["Cs"])
    | st.sampled_from(["\x00", "\r", "\n", "\u202e", "\ufeff", "\\", '"', "/", "%", "+", "&"])
)
hostile_text = st.text(alphabet=hostile_chars, max_size=24)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | hostile_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=12,
)

event_names = (
    st.sampled_from(["inbound", *sorted(MESSAGE_EVENTS), "whitelist", "blacklist", ""])
    | hostile_text
    | json_values
)
raw_messages = (
    hostile_text
    | st.sampled_from(
        [
            "",
            " \r\n",
            "Message-ID: <a@b>\r\n\r\nbody",
            "Message-ID: <\udcff\x00@x>\r\nSubject: =?utf-8?q?=FF?=\r\n\r\n\udcff",
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n--b--',
            "Message-ID:\r\n <folded@x>\r\n\r\n",
        ]
    )
    | json_values
)
msg_values = (
    st.fixed_dictionaries(
        {},
        optional={
            "raw_msg": raw_messages,
            "_id": json_values,
            "headers": json_values
            | st.dictionaries(
                st.sampled_from(["Message-Id", "message-id", "Subject"]), json_values
            ),
            "email": json_values,
            "subject": json_values,
            "tags": json_values,
            "spam_report": json_values,
            "from_email": json_values,
            "text": json_values,
            "attachments": json_values,
        },
    )
    | json_values
)
# Dicts shaped like events, each field of any type; and anything else a list may hold.
event_dicts = st.fixed_dictionaries(
    {},
    optional={
        "event": event_names,
        "msg": msg_values,
        "_id": json_values,
        "ts": json_values,
        "type": st.sampled_from(["blacklist", "whitelist"]) | json_values,
        "action": json_values,
        "reject": json_values,
        "url": json_values,
        "ip": json_values,
    },
)
events = event_dicts | json_values
event_lists = st.lists(events, max_size=8)


def _escape(code: int) -> str:
    return f"\\u{code:04x}"


# A lone surrogate (or NUL) escape, as JSON text: Python cannot build it through json.dumps of a
# valid string, and orjson refuses to decode it.
surrogate_escapes = st.one_of(
    st.integers(0xD800, 0xDFFF).map(_escape),
    st.just("\\u0000"),
    st.tuples(st.integers(0xD800, 0xDBFF), st.integers(0xDC00, 0xDFFF)).map(
        lambda pair: _escape(pair[0]) + _escape(pair[1])
    ),
)
escaped_strings = st.lists(
    surrogate_escapes
    | st.text(alphabet="abc <>@:\r\n", max_size=4).map(lambda s: json.dumps(s)[1:-1]),
    max_size=4,
).map(lambda parts: '"' + "".join(parts) + '"')


def _event_text(parts: dict[str, Any]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in parts.items()) + "}"


escaped_event = st.fixed_dictionaries(
    {},
    optional={
        "event": escaped_strings | st.just('"inbound"'),
        "_id": escaped_strings,
        "ts": escaped_strings | st.just("1700000000"),
        "type": escaped_strings | st.just('"blacklist"'),
        "msg": st.fixed_dictionaries(
            {},
            optional={
                "raw_msg": escaped_strings,
                "_id": escaped_strings,
                "headers": escaped_strings.map(lambda s: '{"Message-Id":' + s + "}"),
            },
        ).map(_event_text),
    },
).map(_event_text)
json_text_with_surrogates = st.lists(escaped_event | escaped_strings, max_size=5).map(
    lambda items: "[" + ",".join(items) + "]"
)
surrogate_batches = json_text_with_surrogates.map(json.loads)
