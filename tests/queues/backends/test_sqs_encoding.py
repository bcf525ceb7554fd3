"""Which bodies SQS carries as text and which travel base64 (no broker needed)."""

from __future__ import annotations

import pytest

from queues.backends.sqs.encoding import text_body


@pytest.mark.parametrize(
    ("raw", "base64"),
    [
        (b'{"handler": "h", "note": "caf\xc3\xa9"}', False),
        (b"tab\tnewline\ncarriage return\r", False),
        (b"delete \x7f is allowed", False),
        (b"nul \x00", True),
        (b"unit separator \x1f", True),
        (b"vertical tab \x0b", True),
        ("U+FFFE \ufffe".encode(), True),
        ("U+FFFF \uffff".encode(), True),
        (b"not UTF-8 \xff", True),
    ],
)
def test_a_body_is_text_unless_sqs_cannot_carry_it(raw: bytes, base64: bool) -> None:
    text, encoded = text_body(raw)
    assert encoded is base64
    if not base64:
        assert text == raw.decode()
