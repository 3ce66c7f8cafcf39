"""The engine's block streams (sim.rng) give the numbers that one numpy call per draw gives, in the
same order, across block boundaries: the engine draws through them for speed, and the results must
not depend on it."""

from __future__ import annotations

import pytest

from sim import rng as rngmod


@pytest.mark.parametrize("stream, one", [
    (rngmod.ExpStream, lambda g: g.standard_exponential()),
    (rngmod.UniformStream, lambda g: g.random()),
    (rngmod.NormalStream, lambda g: g.standard_normal()),
])
def test_block_streams_match_one_draw_at_a_time(stream, one):
    key = (7, 3, "repairs")
    s = stream(key, block=16)  # small blocks: 50 draws cross three boundaries
    assert s._i == 0  # nothing drawn (nor the generator made) before the first draw
    got = [s.next() for _ in range(50)]
    g = rngmod.generator(*key)
    assert got == [one(g) for _ in range(50)]
    assert s._i == 4
