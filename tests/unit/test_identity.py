"""The identities a message carries, as the identity graph links them (pure)."""

from __future__ import annotations

import pytest

from gateway.crypto import Keys
from gateway.domain import Channel, ComplaintDraft, Reporter
from gateway.identity import identities_of

KEYS = Keys(b"i" * 32, b"d" * 32)


def twitter(value: str) -> tuple[str, str]:
    draft = ComplaintDraft(body="jalan rusak", reporter=Reporter(handles={"twitter": value}))
    (found,) = identities_of(Channel.WEB, draft, KEYS)
    return found.value, found.value_hash


@pytest.mark.parametrize("handle", ["@12345", "https://x.com/12345", "twitter.com/00012345"])
def test_a_username_of_digits_is_not_the_account_with_that_numeric_id(handle: str) -> None:
    # "@12345" is one account (usernames may be all digits), "12345" the numeric user id of
    # another: linked as one identity, two people without a NIK would merge into one.
    assert twitter(handle)[1] != twitter("12345")[1]


def test_the_same_account_written_in_other_ways_is_one_identity() -> None:
    assert twitter("@Budi_S") == twitter("https://twitter.com/budi_s") == twitter("budi_s")
    assert twitter("@1234") == twitter("x.com/1234")
    assert twitter("12345") == twitter(" 012345 ")
