import itertools

import pytest

from gateway import tracking


def test_new_ids_are_valid_short_and_in_alphabet() -> None:
    for _ in range(1000):
        tid = tracking.new_tracking_id()
        assert len(tid) == tracking.LENGTH <= 10
        assert set(tid) <= set(tracking.ALPHABET)
        assert tracking.is_valid(tid)


def test_alphabet_has_no_look_alikes() -> None:
    for ch in "01ILOU":
        assert ch not in tracking.ALPHABET
    assert len(set(tracking.ALPHABET)) == len(tracking.ALPHABET) == 30


def test_input_is_case_and_separator_insensitive() -> None:
    tid = tracking.new_tracking_id()
    typed = " " + tracking.display(tid).lower() + " "
    assert tracking.normalize(typed) == tid
    assert tracking.normalize(tid[:4] + " " + tid[4:]) == tid


def test_every_single_symbol_typo_is_caught() -> None:
    for _ in range(200):
        tid = tracking.new_tracking_id()
        for pos, other in itertools.product(range(len(tid)), tracking.ALPHABET):
            if tid[pos] == other:
                continue
            assert not tracking.is_valid(tid[:pos] + other + tid[pos + 1 :])


def test_adjacent_swaps_are_mostly_caught() -> None:
    caught = total = 0
    for _ in range(500):
        tid = tracking.new_tracking_id()
        for pos in range(len(tid) - 1):
            if tid[pos] == tid[pos + 1]:
                continue
            swapped = tid[:pos] + tid[pos + 1] + tid[pos] + tid[pos + 2 :]
            total += 1
            caught += not tracking.is_valid(swapped)
    assert caught / total > 0.95


@pytest.mark.parametrize("bad", ["", "ABC", "K7QM4XRT9X", "K7QM4XRT0", "O7QM4XRT9", "K7QM4XRT!"])
def test_malformed_inputs_are_rejected(bad: str) -> None:
    assert tracking.normalize(bad) is None


def test_ids_do_not_follow_each_other() -> None:
    ids = [tracking.new_tracking_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    # consecutive IDs share no more leading symbols than chance allows
    shared = sum(a[:3] == b[:3] for a, b in itertools.pairwise(ids))
    assert shared < 5


def test_every_symbol_is_drawn_about_equally_often() -> None:
    # Symbols come from random bytes with rejection sampling. Taking byte % 30 of every byte
    # would draw the first 16 symbols 9/8 as often as the other 14 (256 = 8 * 30 + 16).
    counts = dict.fromkeys(tracking.ALPHABET, 0)
    for _ in range(6000):
        for ch in tracking.new_tracking_id()[: tracking.BODY_LENGTH]:
            counts[ch] += 1
    first = [counts[c] for c in tracking.ALPHABET[:16]]
    rest = [counts[c] for c in tracking.ALPHABET[16:]]
    assert (sum(first) / len(first)) / (sum(rest) / len(rest)) < 1.05
    expected = 6000 * tracking.BODY_LENGTH / len(tracking.ALPHABET)
    assert all(abs(c - expected) / expected < 0.12 for c in counts.values())
