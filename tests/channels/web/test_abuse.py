"""channels.web.abuse: the client address behind trusted proxies, and identity buckets. Pure."""

from __future__ import annotations

import ipaddress
import os

from channels.web.abuse import Guard, client_address
from gateway.crypto import Keys
from gateway.ratelimit import RateLimiter
from gateway.settings import WebSettings
from tests.channels.web.conftest import NIK

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32")]


def test_the_peer_is_the_client_unless_it_is_a_trusted_proxy() -> None:
    assert client_address("203.0.113.7", ["198.51.100.1"], PROXIES) == "203.0.113.7"
    assert client_address("203.0.113.7", [], []) == "203.0.113.7"
    assert client_address("10.1.2.3", ["198.51.100.1"], PROXIES) == "198.51.100.1"
    assert client_address("10.1.2.3", [], PROXIES) == "10.1.2.3"  # no header: the proxy itself
    assert client_address(None, [], PROXIES) == "unknown"


def test_only_the_right_most_untrusted_hop_counts() -> None:
    # The client wrote "1.1.1.1" itself; the outer proxy 10.0.0.9 saw 198.51.100.1 and appended
    # it; the inner proxy 10.0.0.8 saw 10.0.0.9.
    chain = ["1.1.1.1, 198.51.100.1", "10.0.0.9"]
    assert client_address("10.0.0.8", chain, PROXIES) == "198.51.100.1"
    assert client_address("10.0.0.8", ["garbage, 10.0.0.9"], PROXIES) == "10.0.0.9"
    assert client_address("10.0.0.8", ["[2001:db9::1]:4711"], PROXIES) == "2001:db9::1"
    assert client_address("2001:db8::5", ["203.0.113.9:51234"], PROXIES) == "203.0.113.9"


def test_an_ipv4_address_mapped_into_ipv6_is_the_ipv4_address() -> None:
    # Listening on "::" (dual stack), a proxy that connects over IPv4 is the peer
    # "::ffff:10.0.0.8": still the trusted 10.0.0.8, or every citizen behind it would share one
    # bucket, the proxy's. And one client is one bucket whichever way it is written.
    assert client_address("::ffff:10.0.0.8", ["198.51.100.1"], PROXIES) == "198.51.100.1"
    assert client_address("::ffff:203.0.113.7", [], PROXIES) == "203.0.113.7"
    assert client_address("10.0.0.8", ["::ffff:198.51.100.1"], PROXIES) == "198.51.100.1"


def test_identity_buckets_are_keyed_hashes_of_normalised_identities() -> None:
    keys = Keys(os.urandom(32), os.urandom(32))
    guard = Guard(RateLimiter.__new__(RateLimiter), WebSettings(), keys)
    one = guard.identity_buckets(NIK, "0812-3456-7890", "Siti@Contoh.ID")
    two = guard.identity_buckets(NIK, "+62 812 3456 7890", "siti@contoh.id")
    assert [b for b, _ in one] == [b for b, _ in two] and len(one) == 3
    assert [b.split(":")[1] for b, _ in one] == ["nik", "phone", "email"]
    for bucket, limit in one:
        assert NIK not in bucket and "1234567890" not in bucket and "siti" not in bucket
        assert len(bucket) <= 160 and limit.requests == 10 and limit.window == 3600
    # Not the identity table's hash: a rate-limit row cannot be joined to a person.
    assert keys.lookup_hash("nik", NIK) not in one[0][0]
    assert guard.identity_buckets("3209014101900000", "12", "siti@") == []  # invalid: none
    # One Gmail mailbox however it is written (dots, +tag): one bucket, not one per spelling.
    gmail = {b for spelling in ("budisantoso@gmail.com", "Budi.Santoso+1@gmail.com",
                                "b.u.d.i.santoso+lapor@googlemail.com")
             for b, _ in guard.identity_buckets(None, None, spelling)}
    assert len(gmail) == 1
    other = Guard(RateLimiter.__new__(RateLimiter), WebSettings(), Keys(os.urandom(32), b"x"))
    assert other.identity_buckets(NIK, None, None) != guard.identity_buckets(NIK, None, None)
