"""Named random streams. One root seed per experiment; each replication and each stream gets its
own generator from (root, replication, stream), so results do not depend on the order in which
replications run, on worker counts or on which other streams a feature draws from."""

from __future__ import annotations

import numpy as np

STREAMS = {"inputs": 0, "lengths": 1, "failures": 2, "preemptions": 3, "divergence": 4, "arrivals": 5,
           "job_failures": 6, "planned": 7, "loss_spikes": 8, "stragglers": 9, "lemons": 10, "unrecoverable": 11,
           "repairs": 12, "co_interruption": 13,
           "domain_failures": 14, "outages": 15, "lemon_picks": 16, "price_paths": 17, "obtain": 18}


def generator(seed: int, replication: int, stream: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(replication), STREAMS[stream])))


class ExpStream:
    """Exponential(1) variates drawn in blocks (a scalar numpy draw costs far more than an array
    slot). Divide by a rate to get a waiting time."""

    __slots__ = ("_rng", "_it", "_block", "_i")

    def __init__(self, rng: np.random.Generator, block: int = 256):
        self._rng = rng
        self._block = block
        self._it = iter(()).__next__
        self._i = 0  # blocks drawn so far

    def _fill(self) -> list[float]:
        return self._rng.standard_exponential(self._block).tolist()

    def next(self) -> float:
        try:
            return self._it()
        except StopIteration:
            self._it = iter(self._fill()).__next__
            self._i += 1
            return self._it()


class UniformStream(ExpStream):
    """Uniform(0, 1) variates drawn in blocks."""

    __slots__ = ()

    def _fill(self) -> list[float]:
        return self._rng.random(self._block).tolist()
