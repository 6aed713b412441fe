import os
import socket
import sys
import threading
import time
import uuid

import pytest

from gateway import ids


def test_ids_are_distinct_version_7_uuids_in_time_order() -> None:
    before = time.time_ns() // 1_000_000
    drawn = [ids.new_id() for _ in range(5000)]  # more than one buffer of random bytes
    after = time.time_ns() // 1_000_000
    assert len(set(drawn)) == len(drawn)
    for text in drawn:
        parsed = uuid.UUID(text)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and str(parsed) == text
        assert before <= parsed.int >> 80 <= after  # the first 48 bits: milliseconds
    # In order to the millisecond: later ids never sort before earlier milliseconds.
    millis = [uuid.UUID(text).int >> 80 for text in drawn]
    assert millis == sorted(millis)
    # Within one millisecond the rest is random: 74 bits, not a counter.
    tails = {uuid.UUID(text).int & ((1 << 62) - 1) for text in drawn}
    assert len(tails) == len(drawn)


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    ids.new_id()  # the parent holds a partly used buffer
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.close(read)
        os.write(write, ids.new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    _, status = os.waitpid(pid, 0)
    # A child that failed before writing reports "", which differs from any id too.
    assert os.waitstatus_to_exitcode(status) == 0 and uuid.UUID(child).version == 7, child
    assert child != ids.new_id()


def test_random_bytes_are_never_handed_out_twice() -> None:
    # Tracking IDs and row ids share one buffer: mixed sizes across buffer refills must neither
    # overlap nor come back short.
    sizes = [12, 16, 7, 256, 1, 16, 12] * 200
    drawn = [ids.random_bytes(size) for size in sizes]
    assert [len(chunk) for chunk in drawn] == sizes
    # 12 random bytes or more repeat with negligible probability unless a buffer is reused.
    long_chunks = [chunk for chunk in drawn if len(chunk) >= 12]
    assert len(set(long_chunks)) == len(long_chunks)


def test_threads_drawing_at_once_never_share_bytes() -> None:
    # Files are sealed in worker threads (AES-GCM nonces from this buffer) while the event loop
    # draws ids and tracking IDs: a nonce handed out twice would break the cipher. Switching
    # threads as often as the interpreter allows opens any window between reading the offset and
    # moving it (CPython 3.11 switches only at calls and loops, so the lock matters where that
    # differs: a free-threaded build, or a call added inside the draw).
    draws: list[list[bytes]] = [[] for _ in range(4)]

    def draw(out: list[bytes]) -> None:
        for _ in range(20_000):
            out.append(ids.random_bytes(12))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=draw, args=(out,)) for out in draws]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    every = [chunk for out in draws for chunk in out]
    assert len(every) == 80_000
    assert len(set(every)) == len(every)


def test_a_worker_name_fits_a_claim_column_whatever_the_host_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for host in ("gw-1", "x" * 63, "lapor-intake-gateway-production-jakarta-7c9f8d6b5d-x2x7k"):
        monkeypatch.setattr(socket, "gethostname", lambda host=host: host)
        for parts in ((), ("sms",), ("123456",)):
            name = ids.worker_name(*parts)
            assert len(name) <= ids.WORKER_NAME_MAX and name.startswith(host[:20])
            assert name[: -9].endswith("-".join(parts)) and len(name.rsplit("-", 1)[1]) == 8
            assert ids.worker_name(*parts) != name  # each worker its own
