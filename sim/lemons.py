"""Lemon nodes as a population: each node of a pool (and each spare) is a lemon, failing at a
multiple of the base rate, with probability `lemons.fraction` when the replication starts, and stays
one until a repair cures it (`lemons.repair_cures`). A run that starts draws its nodes from the
pool's free nodes (so how many lemons it gets is hypergeometric), keeps them while it runs, and
gives them back when it stops; a failed node is a lemon in proportion to its share of the run's
failure rate; a repaired lemon is cured with the cure probability and goes back where it came
from. A mixin of `sim.engine.Replication` (beside `sim.lifecycle.RunLife` and
`sim.capacity.PoolEvents`), used only when the scenario has lemons.
"""

from __future__ import annotations

import numpy as np

from sim.runstate import PoolState, RunState


class LemonNodes:
    """Needs `lemon_rng` (a numpy Generator) and `lemon_u` (a sim.rng.UniformStream)."""

    lemon_rng: np.random.Generator

    def _lemons_start(self, pool: PoolState) -> None:
        """Each of the pool's nodes and spares is a lemon with the lemon share, independently."""
        p = pool.p
        nodes, spares = p.capacity0 // p.node_size, p.spares
        lemons = int(self.lemon_rng.binomial(nodes + spares, p.lemon_fraction))
        pool.lemons_spare = int(self.lemon_rng.hypergeometric(lemons, nodes + spares - lemons, spares)) if (
            spares and lemons) else 0
        pool.lemons_free = lemons - pool.lemons_spare

    def _lemons_resized(self, pool: PoolState, cap: int) -> None:
        """The pool's capacity goes to `cap`: new nodes are lemons at the lemon share; when it
        shrinks, it keeps no more lemons than it has nodes."""
        ns = pool.p.node_size
        added = (cap - pool.capacity) // ns
        if added > 0:
            pool.lemons_free += int(self.lemon_rng.binomial(added, pool.p.lemon_fraction))
        else:
            pool.lemons_free = min(pool.lemons_free, max(cap // ns, 0))

    def _draw(self, lemons: int, nodes: int, k: int) -> int:
        """Lemons among `k` nodes taken at random from `nodes` of which `lemons` are lemons."""
        lemons = min(lemons, nodes)
        if lemons <= 0 or k <= 0:
            return 0
        if k >= nodes:
            return lemons
        if k == 1:  # one node (most runs): a uniform from a block is far cheaper than a numpy call
            draw = self.lemon_u.next  # (a slot: read, then call)
            return int(draw() * nodes < lemons)
        return int(self.lemon_rng.hypergeometric(lemons, nodes - lemons, k))

    def _rate_of(self, r: RunState, nodes: int) -> None:
        r.rate_mult = 1.0 + r.lemons / nodes * (r.pool.p.lemon_multiplier - 1.0)

    def _take_lemons(self, r: RunState, pool: PoolState, free_before: int) -> None:
        """A run takes its nodes from the pool's free ones (free accelerators before it took them).
        (At every start: a one-node run's draw and the rate are written out here, as `_draw` and
        `_rate_of` have them.)"""
        p = pool.p
        ns = p.node_size
        nodes = -(-r.n // ns)
        lemons = pool.lemons_free
        if nodes != 1:
            k = self._draw(lemons, max(free_before // ns, nodes), nodes)
        elif lemons <= 0:
            k = 0
        elif free_before // ns <= 1:  # it takes the only free node
            k = 1
        else:
            draw = self.lemon_u.next  # (a slot: read, then call)
            k = int(draw() * (free_before // ns) < lemons)
        r.lemons = k
        if k:
            pool.lemons_free -= k
            r.rate_mult = 1.0 + k / nodes * (p.lemon_multiplier - 1.0)
        else:
            r.rate_mult = 1.0

    def _failed_lemons(self, r: RunState, nodes: int, k: int, hardware: bool) -> int:
        """Lemons among the `k` failed nodes of the run: a hardware failure's node is a lemon in
        proportion to the lemons' share of the run's failure rate; a failure domain's nodes are any."""
        if not r.lemons:
            return 0
        if hardware:
            m = r.pool.p.lemon_multiplier
            return int(self.lemon_u.next() < r.lemons * m / (nodes - r.lemons + r.lemons * m))
        return self._draw(r.lemons, nodes, k)

    def _lemons_back_at_once(self, r: RunState, k: int, hardware: bool) -> None:
        """No repair modelled: the failed nodes are back in the run at once, each lemon cured with
        the cure probability."""
        nodes = -(-r.n // r.pool.p.node_size)
        bad = self._failed_lemons(r, nodes, k, hardware)
        cures = r.pool.p.lemon_cures
        if bad and cures > 0.0:
            r.lemons -= int(self.lemon_rng.binomial(bad, cures))
            self._rate_of(r, nodes)

    def _lemons_lost(self, r: RunState, k: int, spares: int, hardware: bool) -> tuple[int, int]:
        """`k` of the run's nodes failed (one by hardware failure, or a failure domain's) and
        `spares` of them were replaced by spares. Returns the failed lemons that go back to the
        spares and to the pool when repaired; the run's lemon count and rate follow."""
        pool = r.pool
        ns = pool.p.node_size
        nodes = -(-r.n // ns)
        # (each draw only where it could find a lemon: `_draw` gives 0 without drawing otherwise)
        bad = self._failed_lemons(r, nodes, k, hardware) if r.lemons else 0
        back_to_spares = self._draw(bad, k, spares) if bad else 0
        new = 0
        if pool.lemons_spare > 0 and spares:  # replacements from the spares
            new = self._draw(pool.lemons_spare, pool.spares_free + spares, spares)
            pool.lemons_spare -= new
        rest = k - spares
        if rest and pool.free >= 0 and pool.lemons_free > 0:  # the rest from free nodes (free counts the loss)
            drawn = self._draw(pool.lemons_free, pool.free // ns + rest, rest)
            pool.lemons_free -= drawn
            new += drawn
        if bad or new:
            r.lemons += new - bad
            self._rate_of(r, nodes)
        return back_to_spares, bad - back_to_spares

    def _lemons_cured(self, pool: PoolState, to_spares: int, to_pool: int) -> None:
        """Repaired lemons: each is cured with the cure probability; the rest stay lemons."""
        cures = pool.p.lemon_cures
        if cures > 0.0:
            to_spares -= int(self.lemon_rng.binomial(to_spares, cures)) if to_spares else 0
            to_pool -= int(self.lemon_rng.binomial(to_pool, cures)) if to_pool else 0
        pool.lemons_spare += to_spares
        pool.lemons_free += to_pool
