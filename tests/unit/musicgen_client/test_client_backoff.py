from __future__ import annotations

import itertools
import random

import pytest

from musicgen_client.backoff import Backoff


def test_delays_grow_geometrically_up_to_the_cap_without_jitter():
    delays = list(itertools.islice(Backoff(initial=1, factor=2, maximum=10, jitter=0).delays(), 6))
    assert delays == [1, 2, 4, 8, 10, 10]


def test_jitter_only_shortens_and_never_approaches_zero():
    schedule = Backoff(initial=0.5, factor=1.6, maximum=15, jitter=0.25)
    delays = list(itertools.islice(schedule.delays(random.Random(7)), 200))
    assert min(delays) >= 0.5 * 0.75
    assert max(delays) <= 15
    tail = delays[20:]
    assert min(tail) >= 15 * 0.75
    # Jitter must actually spread the delays, or many clients would poll in lockstep.
    assert len({round(delay, 6) for delay in tail}) > 100


def test_two_clients_do_not_poll_in_lockstep():
    first = list(itertools.islice(Backoff().delays(random.Random(1)), 10))
    second = list(itertools.islice(Backoff().delays(random.Random(2)), 10))
    assert first != second


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"initial": 0}, "initial: must be > 0"),
        ({"factor": 0.5}, "factor: must be >= 1"),
        ({"initial": 5, "maximum": 1}, "maximum: must be >= initial"),
        ({"jitter": 1}, r"jitter: must be in \[0, 1\)"),
    ],
)
def test_bad_schedules_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        Backoff(**options)
