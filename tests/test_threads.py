"""methods._internal.threads: the thread count of a unit of work is chosen by timing, and put back."""

from __future__ import annotations

import pytest
import torch

from methods._internal.threads import ThreadTuner, tuner
from methods.errors import OptionError


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_tries_each_candidate_then_keeps_the_faster_and_looks_again(two_threads):
    t = ThreadTuner(probe_every=4, overhead=0.5)
    assert t.candidates == (2, 1)
    assert t.choose() == 2  # untried first, in order
    t.seconds[2].append(0.010)
    assert t.choose() == 1  # each runs twice, in turn
    t.seconds[1].append(0.008)
    t.seconds[2].append(0.010)
    assert t.choose() == 1
    t.seconds[1].append(0.008)
    t.last[2], t.last[1], t.units = 2, 3, 4
    assert t.choose() == 1  # 1 thread measured faster
    t.units = 6  # 4 units since 2 threads ran (10/8 slower: probe_every decides)
    assert t.choose() == 2
    t.seconds[2] = [0.040, 0.040]  # 5x slower: looked at every (5 - 1) / 0.5 = 8 units
    t.units = 9
    assert t.choose() == 1
    t.units = 10
    assert t.choose() == 2
    t.seconds[1] += [0.050, 0.060]  # the load changed: median of 1 thread's last units is now 0.050
    t.last[1], t.units = 10, 11
    assert t.choose() == 2
    t.seconds[1], t.seconds[2] = [0.001] * 2, [1.0] * 2  # 1000x slower: 19,980 units for 5 %, capped at 64
    t.last[2], t.units = 100, 163
    assert t.choose() == 1
    t.units = 164
    assert t.choose() == 2


def test_the_default_looks_at_a_slower_candidate_every_25_units_and_follows_its_own_slowdown(two_threads):
    t = ThreadTuner()  # defaults: probe_every 8, overhead 0.02
    t.seconds[2], t.seconds[1] = [0.010] * 3, [0.015] * 3  # 1 thread 1.5x slower: (1.5 - 1) / 0.02 = 25 units
    t.last[2], t.last[1], t.units = 10, 10, 34
    assert t.choose() == 2  # 24 units since 1 thread ran: not yet
    t.units = 35
    assert t.choose() == 1  # 25: look again (0.5 of a unit per 25 = 2 % of the time)
    t.last[1] = 35
    t.seconds[2] = [0.010, 0.030, 0.030]  # the machine got busy: the last three units of 2 threads (as run keeps them)
    t.units = 37
    assert t.choose() == 1  # its median 0.030 > 0.015: switched, without waiting for a look


def test_run_sets_the_count_for_the_block_and_puts_it_back(two_threads):
    t = ThreadTuner()
    seen = []
    for size in (4, 4, 4, 4):
        with t.run(size) as n:
            seen.append((n, torch.get_num_threads()))
        assert torch.get_num_threads() == 2
    assert seen[:3] == [(2, 2), (2, 2), (1, 1)]  # a warm-up unit, then each candidate in turn
    assert t.units == 3 and len(t.seconds[2]) + len(t.seconds[1]) == 3
    with t.run(0):  # a set-up unit: run, not recorded
        pass
    assert t.units == 3
    with pytest.raises(ValueError), t.run(1):  # an error inside: the count is put back all the same
        torch.set_num_threads(1)
        raise ValueError
    assert torch.get_num_threads() == 2


def test_keeps_the_last_three_units_per_candidate(two_threads):
    t = ThreadTuner(probe_every=2)
    for _ in range(12):
        with t.run(1):
            pass
    assert all(len(v) <= 3 for v in t.seconds.values())


def test_one_thread_has_nothing_to_choose():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t = ThreadTuner()
        assert t.candidates == (1,)
        for _ in range(5):
            with t.run(2) as n:
                assert n == 1
    finally:
        torch.set_num_threads(before)


def test_named_tuners_are_kept_per_thread_count(two_threads):
    assert tuner("test.a") is tuner("test.a") is not tuner("test.b")
    torch.set_num_threads(1)
    assert tuner("test.a").candidates == (1,)


def test_bad_options():
    with pytest.raises(OptionError, match="probe_every"):
        ThreadTuner(probe_every=1)
    with pytest.raises(OptionError, match="overhead"):
        ThreadTuner(overhead=0)


def test_overlapping_units_put_the_own_count_back(two_threads):
    """Two runs in threads of one process: whichever order they end in, the process's own count
    comes back (a naive save/restore per unit would leave 1 thread behind)."""
    a, b = ThreadTuner(), ThreadTuner()
    a.seconds[2], b.seconds[2] = [0.1, 0.1], [0.1, 0.1]
    a.seconds[1], b.seconds[1] = [0.01, 0.01], [0.01, 0.01]  # both choose 1 thread
    ua, ub = a.run(1), b.run(1)
    ua.__enter__()
    assert torch.get_num_threads() == 1
    ub.__enter__()  # b starts while a holds 1 thread: a per-unit "before" would be 1
    ua.__exit__(None, None, None)
    assert torch.get_num_threads() == 1  # b still runs
    ub.__exit__(None, None, None)
    assert torch.get_num_threads() == 2
    assert tuner("test.c").candidates == (2, 1)


def test_a_unit_inside_a_block_puts_the_blocks_count_back(two_threads):
    """evaluate runs an image's work on the faster count so far (run(0)) and times each chunk of
    curve forwards inside it: after each chunk the image's count is back."""
    t = ThreadTuner()
    t.seconds[2], t.seconds[1] = [0.5, 0.5], [0.1, 0.1]  # 1 thread faster
    t._warmed = True
    with t.run(0) as outer:
        assert outer == 1 == torch.get_num_threads() and t.best() == 1
        t.last[2] = -100  # due for a look at 2 threads
        with t.run(3) as inner:
            assert inner == 2 == torch.get_num_threads()
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2 and t.units == 1
