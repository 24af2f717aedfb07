"""runtime.bench: the block sampling the latency tables rest on (structure and pairing only;
no timing is asserted)."""

from __future__ import annotations

import pytest

from infopt.runtime.bench import block_medians, block_ratios, sample_blocks


def test_sample_blocks_alternates_and_reverses_order():
    calls: list[str] = []
    runners = {name: (lambda n=name: calls.append(n)) for name in ("a", "b")}
    samples = sample_blocks(runners, blocks=4, per_block=3, warmup=1, settle_s=0.0)
    assert [len(s) for s in samples.values()] == [4, 4]
    assert all(
        len(block) == 3 and all(t >= 0 for t in block) for s in samples.values() for block in s
    )
    # warm-up once each, then per block one settle run + 3 timed runs, order a b | b a | a b | b a
    assert calls[:2] == ["a", "b"]
    blocks = [calls[2 + 4 * i] for i in range(8)]
    assert blocks == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert all(len(set(calls[2 + 4 * i : 6 + 4 * i])) == 1 for i in range(8))


def test_sample_blocks_stops_at_budget():
    samples = sample_blocks({"a": lambda: None}, blocks=50, per_block=1, settle_s=0.0, budget_s=0.0)
    assert len(samples["a"]) == 1


def test_block_ratios_pair_blocks_in_order():
    samples = {"x": [[1.0, 3.0, 2.0], [4.0, 4.0, 5.0]], "y": [[4.0, 4.0, 4.0], [2.0, 1.0, 2.0]]}
    assert block_ratios(samples, "x", "y") == pytest.approx([0.5, 2.0])
    with pytest.raises(ValueError):
        block_ratios({"x": [[1.0]], "y": []}, "x", "y")


def test_block_medians_pool_every_timed_call():
    samples = {"x": [[5.0, 1.0], [2.0, 9.0, 3.0]], "y": [[4.0]]}
    assert block_medians(samples) == {"x": 3.0, "y": 4.0}


def test_sample_blocks_times_with_the_given_clock():
    ticks = iter(range(1000))
    samples = sample_blocks(
        {"a": lambda: None},
        blocks=2,
        per_block=2,
        warmup=0,
        settle_s=0.0,
        clock=lambda: next(ticks),
    )
    # each timed call reads the clock twice, consecutive ticks: every sample is exactly one tick
    assert samples == {"a": [[1, 1], [1, 1]]}
