"""The follow-up code a web or API receipt gives with its tracking ID, and the parser of a
follow-up's JSON: the code is the ID's under the identity key alone, typed like an ID."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from channels.web.parse import FOLLOWUP_OF, parse_json_followup
from gateway import tracking
from gateway.crypto import Keys
from gateway.domain import Channel, RawInbound
from gateway.errors import ParseError

KEYS = Keys(b"i" * 32, b"d" * 32)


def test_the_code_is_eight_symbols_of_the_id_alphabet_and_the_same_for_the_same_id() -> None:
    ids = [tracking.new_tracking_id() for _ in range(200)]
    codes = [KEYS.followup_code(tid) for tid in ids]
    assert all(len(c) == 8 and set(c) <= set(tracking.ALPHABET) for c in codes)
    assert codes == [KEYS.followup_code(tid) for tid in ids]
    assert len(set(codes)) == len(ids)
    # Another identity key, other codes (a new data key changes nothing: it seals, not names).
    assert KEYS.followup_code(ids[0]) != Keys(b"j" * 32, b"d" * 32).followup_code(ids[0])
    assert KEYS.followup_code(ids[0]) == Keys(b"i" * 32, b"e" * 32).followup_code(ids[0])


def test_the_code_is_typed_like_an_id_and_only_its_own_id_takes_it() -> None:
    tid = "K7QM4XRTX"
    code = KEYS.followup_code(tid)
    for typed in (code, code.lower(), tracking.display_code(code), f" {code[:4]} {code[4:]} "):
        assert KEYS.followup_code_matches(tid, typed), typed
    assert not KEYS.followup_code_matches("K7QM4XRT9", code)
    for wrong in ("", code[:7], code + "2", code[:7] + ("2" if code[7] != "2" else "3")):
        assert not KEYS.followup_code_matches(tid, wrong), wrong


def raw(body: str, about: str | None = "K7QM-4XRTX") -> RawInbound:
    return RawInbound(
        channel=Channel.WEB,
        body=body.encode(),
        received_at=datetime(2026, 12, 5, tzinfo=UTC),
        provider_message_id="uuid:1",
        content_type="application/json",
        metadata={FOLLOWUP_OF: about} if about is not None else {},
    )


def test_a_followup_is_about_the_id_of_its_path_with_the_code_typed() -> None:
    draft = parse_json_followup(raw('{"body": " Makin parah ", "followup_code": "abcd-efgh",'
                                    ' "privacy": {"confidential": true}}'))
    assert draft.about == "K7QM4XRTX" and draft.about_code == "abcd-efgh"
    assert draft.body == "Makin parah" and draft.privacy.confidential
    assert "abcd" not in repr(draft)  # the code stays out of logs and reprs


@pytest.mark.parametrize(
    ("body", "about", "said"),
    [
        ('{"body": "x", "followup_code": "A", "reporter": {}}', "K7QM4XRTX", "reporter"),
        ('{"body": "x"}', "K7QM4XRTX", "followup_code wajib diisi"),
        ('{"followup_code": "A"}', "K7QM4XRTX", "body wajib diisi"),
        ('{"body": "x", "followup_code": 7}', "K7QM4XRTX", "followup_code harus teks"),
        ('{"body": "x", "followup_code": "A"}', "K7QM4XRT9", "nomor pelacakan tidak sah"),
        ('{"body": "x", "followup_code": "A"}', None, "nomor pelacakan tidak sah"),
        ("[1]", "K7QM4XRTX", "objek JSON"),
    ],
)
def test_a_wrong_followup_is_refused_saying_why(body: str, about: str | None, said: str) -> None:
    with pytest.raises(ParseError) as refused:
        parse_json_followup(raw(body, about))
    assert said in refused.value.reason
