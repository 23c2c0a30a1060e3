"""Reply text on the labelled set, and the comparison that chose the library.

The figures are in docs/agent-fields.md; these tests keep them true.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from email_reply_parser import EmailReplyParser as ClassicReplyParser  # type: ignore[import-untyped]

from app.mail.reply import _PARSER, library_reply, reply_text, strip_known_history
from app.tests.mail.reply_cases import REPLY_CASES, ReplyCase


def right(case: ReplyCase, extracted: str | None) -> bool:
    out = extracted or ""
    return all(n in out for n in case.new) and not any(o in out for o in case.old)


def accuracy(extract: Callable[[str], str | None]) -> int:
    return sum(right(case, extract(case.text)) for case in REPLY_CASES)


@pytest.mark.parametrize("case", REPLY_CASES, ids=lambda c: c.name)
def test_reply_text_keeps_the_new_words_only(case: ReplyCase) -> None:
    extracted = reply_text(case.text, None)
    assert extracted is not None
    for phrase in case.new:
        assert phrase in extracted
    for phrase in case.old:
        assert phrase not in extracted


def test_the_comparison_that_chose_mail_parser_reply() -> None:
    total = len(REPLY_CASES)
    assert total == 20
    # The libraries as they come (mail-parser-reply: the first reply's body).
    assert accuracy(library_reply) == 15
    assert accuracy(_PARSER.parse_reply) == 12  # its `latest_reply` keeps signatures
    assert accuracy(ClassicReplyParser.parse_reply) == 13
    # With the pre-step for what both miss.
    assert accuracy(lambda t: library_reply(strip_known_history(t))) == total
    assert accuracy(lambda t: ClassicReplyParser.parse_reply(strip_known_history(t))) == 19
    # The pre-step alone misses the closing signature ("Best regards,\nBob ..."): the
    # library is what finds it.
    assert accuracy(strip_known_history) == 19


def test_not_a_reply_gives_its_whole_text() -> None:
    text = "Hello team,\n\nthe office is closed on Friday.\n\nCarol"
    assert reply_text(text, None) == text


def test_html_only_reply_is_read_as_text_without_the_quote() -> None:
    html = (
        "<html><head><style>p {color: red}</style></head><body>"
        "<div dir='ltr'>Friday at <b>noon</b> is fine.</div><br>"
        "<div class='gmail_quote'><div class='gmail_attr'>On Mon, Dec 1, 2026 at 10:02 AM "
        "Alice &lt;alice@example.org&gt; wrote:<br></div>"
        "<blockquote class='gmail_quote'>When can we <i>meet</i>?<br>Alice</blockquote>"
        "</div></body></html>"
    )
    assert reply_text(None, html) == "Friday at noon is fine."
    assert reply_text("  ", html) == "Friday at noon is fine."


def test_outlook_html_reply() -> None:
    html = (
        "<p>Paid this morning.</p><hr><div id='divRplyFwdMsg'><b>From:</b> Alice "
        "&lt;alice@example.org&gt;<br><b>Sent:</b> Monday, December 1, 2026 10:02<br>"
        "<b>Subject:</b> Invoice</div><p>Has the invoice been paid?</p>"
    )
    assert reply_text(None, html) == "Paid this morning."


def test_no_text_at_all() -> None:
    assert reply_text(None, None) is None
    assert reply_text("", "<p> </p>") is None


def test_crlf_and_huge_input_are_handled() -> None:
    assert reply_text("Yes.\r\n\r\n> question?\r\n", None) == "Yes."
    huge = "word " * 100_000 + "\n> quoted\n"
    extracted = reply_text(huge, None)
    assert extracted is not None and "quoted" not in extracted
