"""Named random streams. One root seed per experiment; each replication and each stream gets its
own generator from (root, replication, stream), so results do not depend on the order in which
replications run, on worker counts or on which other streams a feature draws from."""

from __future__ import annotations

from itertools import chain

import numpy as np

STREAMS = {"inputs": 0, "lengths": 1, "failures": 2, "preemptions": 3, "divergence": 4, "arrivals": 5,
           "job_failures": 6, "planned": 7, "loss_spikes": 8, "stragglers": 9, "lemons": 10, "unrecoverable": 11,
           "repairs": 12, "co_interruption": 13,
           "domain_failures": 14, "outages": 15, "lemon_picks": 16, "price_paths": 17, "obtain": 18,
           "interruption_kinds": 19}


def generator(seed: int, replication: int, stream: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(replication), STREAMS[stream])))


FIRST_BLOCK = 32  # (a block of 32 then blocks of 256 hold the same numbers as one draw of all of them)


class ExpStream:
    """Exponential(1) variates drawn in blocks (a scalar numpy draw costs far more than an array
    slot). Divide by a rate to get a waiting time. `next()` is a C-level iterator step (a chain over
    the blocks): a draw costs about as much as reading a list. `rng`: a Generator, or the (seed,
    replication, stream name) of one, made at the first draw (making one costs several
    microseconds, and a replication has many streams of which it often draws from few)."""

    __slots__ = ("next", "_drawn")

    def __init__(self, rng: np.random.Generator | tuple[int, int, str], block: int = 256):
        self._drawn = [0]  # blocks drawn so far (a list: the block generator counts in it)
        self.next = chain.from_iterable(_blocks(rng, block, self._fill, self._drawn)).__next__

    @property
    def _i(self) -> int:
        return self._drawn[0]

    @staticmethod
    def _fill(rng: np.random.Generator, block: int) -> list[float]:
        return rng.standard_exponential(block).tolist()


class UniformStream(ExpStream):
    """Uniform(0, 1) variates drawn in blocks."""

    __slots__ = ()

    @staticmethod
    def _fill(rng: np.random.Generator, block: int) -> list[float]:
        return rng.random(block).tolist()


class NormalStream(ExpStream):
    """Standard normal variates drawn in blocks (the same numbers, in the same order, as one
    `standard_normal()` call each)."""

    __slots__ = ()

    @staticmethod
    def _fill(rng: np.random.Generator, block: int) -> list[float]:
        return rng.standard_normal(block).tolist()


def _blocks(rng, block: int, fill, drawn: list[int]):
    """Blocks of `fill(rng, block)` without end; the generator is made at the first."""
    if type(rng) is tuple:
        rng = generator(*rng)
    drawn[0] += 1
    yield fill(rng, min(block, FIRST_BLOCK))  # a small first block: many streams draw a few numbers only
    while True:
        drawn[0] += 1
        yield fill(rng, block)
