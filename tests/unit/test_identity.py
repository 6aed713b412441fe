"""The identities a message carries, as the identity graph links them (pure)."""

from __future__ import annotations

import pytest

from gateway.crypto import Keys
from gateway.domain import Channel, ComplaintDraft, Reporter
from gateway.identity import identities_of, sender_of

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


def emails(channel: Channel, address: str) -> set[str]:
    draft = ComplaintDraft(body="jalan rusak", reporter=Reporter(email=address))
    return {i.value_hash for i in identities_of(channel, draft, KEYS) if i.kind == "email"}


def test_one_gmail_mailbox_written_two_ways_shares_an_identity() -> None:
    # Typed without its dots on the web form, arriving with them (and a tag) by e-mail.
    assert emails(Channel.WEB, "budisantoso85@gmail.com") & emails(
        Channel.EMAIL, "Budi.Santoso85+lapor@googlemail.com"
    )


def test_other_domains_keep_dots_apart() -> None:
    assert not emails(Channel.WEB, "budisantoso@yahoo.co.id") & emails(
        Channel.EMAIL, "budi.santoso@yahoo.co.id"
    )


def test_the_sender_of_an_e_mail_is_the_address_as_given() -> None:
    draft = ComplaintDraft(body="jalan rusak", reporter=Reporter(email="budi.santoso@gmail.com"))
    found = identities_of(Channel.EMAIL, draft, KEYS)
    assert [i.value for i in found] == ["budi.santoso@gmail.com", "budisantoso@gmail.com"]
    sender = sender_of(Channel.EMAIL, found)
    assert sender is not None and sender.value == "budi.santoso@gmail.com"
