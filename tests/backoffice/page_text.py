"""Reading a back-office page as a person does: its text, and the form's error summary."""

from __future__ import annotations

import html
import re
from typing import Any

#: Tags inside a line of text (dropped); the others part words (a space).
_INLINE = re.compile(r"</?(?:a|abbr|b|code|em|i|kbd|small|span|strong|time)\b[^>]*>")


def _text(markup: str) -> str:
    inline_dropped = _INLINE.sub("", markup)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", inline_dropped)).split())


def page_text(response: Any) -> str:
    """The page's text: tags dropped, entities decoded, spaces collapsed."""
    return _text(response.content.decode())


def summary(response: Any) -> list[str]:
    """The lines of the error summary at the top of the form ("Label: message")."""
    box = re.search(
        r'<div class="notice error" role="alert" id="form-errors">(.*?)</div>',
        response.content.decode(),
        re.S,
    )
    assert box, "no error summary on the page"
    return [_text(item) for item in re.findall(r"<li>(.*?)</li>", box.group(1), re.S)]
