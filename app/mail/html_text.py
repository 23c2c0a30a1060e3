"""HTML to plain text, for the reply text of a message that has no plain part.

Only what reply extraction needs: block elements become line breaks, `<blockquote>` content is
prefixed with `> ` (so quoted history looks as it does in plain text mail), scripts, styles and
the head are dropped, entities are decoded. Linear in the input; never raises.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = frozenset(
    {"p", "div", "br", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
     "hr", "pre", "section", "article", "header", "footer", "blockquote"}
)  # fmt: skip
_HIDDEN = frozenset({"script", "style", "head", "title", "template"})
_SPACES = re.compile(r"[ \t\u00a0]+")
_MANY_BLANKS = re.compile(r"\n{3,}")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.quote_depth = 0
        self.hidden = 0
        self.line_depth = 0  # the quote depth of the line being collected

    def _break(self) -> None:
        text = _SPACES.sub(" ", "".join(self.current)).strip()
        if text or (self.lines and self.lines[-1]):
            self.lines.append(("> " * self.line_depth) + text if text else "")
        self.current = []
        self.line_depth = self.quote_depth

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _BLOCKS:
            self._break()
            if tag == "blockquote":
                self.quote_depth += 1
                self.line_depth = self.quote_depth

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self._break()
            if tag == "blockquote":
                self.quote_depth = max(0, self.quote_depth - 1)
                self.line_depth = self.quote_depth

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.current.append(data.replace("\r", " ").replace("\n", " "))


def html_to_text(html: str) -> str:
    collector = _TextCollector()
    try:
        collector.feed(html)
        collector.close()
    except (AssertionError, ValueError):  # the parser's own complaints about broken markup
        pass
    collector._break()
    return _MANY_BLANKS.sub("\n\n", "\n".join(collector.lines)).strip()
