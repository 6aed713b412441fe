import os
import time
import uuid

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
    os.waitpid(pid, 0)
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
