"""A living forecast: re-forecast a running project from its actuals.

From the scenario and what has happened by the as-of date (sim.actuals), build the scenario of
the work that is left, starting at the as-of date:
- completed runs are history: they leave the workload's run count, their cost is actual spend;
- running runs go on from their progress, each a one-run workload of the work it has left, on its
  pool first (the work since its last checkpoint is at risk as usual); an attempt not yet past its
  workload's divergence point may still diverge there: it is the whole run with its share done
  (done_at_start) and the workload's divergence, so that a rerun starts from nothing;
- failed and cancelled runs are spent (their hours and cost count as actuals) and the run itself
  is still to do;
- workloads whose every run is done are gone, and so are the dependencies on them;
- dated capacity changes and earliest starts already passed are applied; reserved commitments
  keep their dates, and only what is still to be paid from the as-of date on is simulated (what
  was paid before is sunk, in the actuals if the ledger has it);
- the work left begins at the as-of instant (project.start_time), on a clock that counts from
  00:00 of the as-of day like every date, period and finish date;
- prices are those from the as-of date on (catalog prices in force then; a declining price curve
  is carried to the as-of date; a random walk restarts there from the price last paid: see
  `_carry_prices`);
and update the uncertain failure rate from what was observed (gamma-Poisson: the prior's mean
and spread as a gamma, plus the interruptions seen over the accelerator-hours run).

Estimate at completion = actual to date + the simulated remaining cost, per replication.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sim import units
from sim.distributions import Z95, nominal
from sim.loader import list_names, name_positions, parse_path, path_str
from sim.units import hours_between

SIZE_KEYS = (("tokens", units.parse_count), ("flop_per_run", units.parse_flop),
             ("gpu_hours_per_run", units.parse_duration_h), ("hours_per_run", units.parse_duration_h))
SCALED = ("p5", "p95", "median", "min", "mode", "max", "low", "high", "mean", "sd", "value")


@dataclass
class Remaining:
    """The scenario of the work left, and what the actuals say happened."""

    raw: dict
    as_of: date  # the day the work left starts on (its scenario's project.start)
    actual_usd: float
    actual_gpu_hours: float
    done_fraction: float  # of the project's nominal accelerator-hours, completed runs and progress
    runs_done: dict[str, int] = field(default_factory=dict)
    runs_running: dict[str, int] = field(default_factory=dict)
    runs_left: dict[str, int] = field(default_factory=dict)
    posterior: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    as_of_time: datetime | None = None  # the as-of instant (None: midnight starting `as_of`)
    run_costs: list[float] = field(default_factory=list)  # each actuals run's cost to date (priced if not given)

    @property
    def offset_h(self) -> float:
        """Hours from the start of the as-of day to the as-of instant: the work left's
        project.start_time (the simulation's clock counts from 00:00 of the as-of day, as every
        date, period and finish date does, and nothing of the work left begins before the instant)."""
        if self.as_of_time is None:
            return 0.0
        return (self.as_of_time - datetime.combine(self.as_of, time())).total_seconds() / 3600


def scaled(value: Any, factor: float, parse) -> Any:
    """A size (a number, a readable string or a distribution) times `factor`."""
    if isinstance(value, dict) and "dist" in value:
        out = dict(value)
        for k in SCALED:
            if k in out and not (k == "sd" and out.get("dist") == "lognormal"):
                out[k] = parse(out[k]) * factor
        return out
    return parse(value) * factor


def _size_key(w: dict):
    return next(((k, p) for k, p in SIZE_KEYS if k in w), (None, None))


def gamma_update(prior_mean: float, prior_cv: float, events: float, exposure: float) -> tuple[float, float]:
    """Posterior mean and coefficient of variation of a Poisson rate: the prior as a gamma of that
    mean and coefficient of variation (shape 1/cv^2, rate shape/mean), `events` seen over
    `exposure` (conjugate update: shape + events, rate + exposure)."""
    shape = 1.0 / prior_cv**2
    rate = shape / prior_mean
    shape, rate = shape + events, rate + exposure
    return shape / rate, 1.0 / math.sqrt(shape)


def prior_mean_cv(value: Any) -> tuple[float, float] | None:
    """Mean and coefficient of variation of a rate written as a number or a lognormal (else None)."""
    if isinstance(value, (int, float)) and value > 0:
        return float(value), 1.0  # a point guess: held loosely (cv 1), so the field data can move it
    if isinstance(value, dict) and value.get("dist") == "lognormal":
        if "p5" in value and "p95" in value:
            lo, hi = float(value["p5"]), float(value["p95"])
            median, sigma = math.sqrt(lo * hi), math.log(hi / lo) / (2 * Z95)
        elif "median" in value and "sigma" in value:
            median, sigma = float(value["median"]), float(value["sigma"])
        else:
            return None
        return median * math.exp(sigma**2 / 2), math.sqrt(math.expm1(sigma**2))
    return None


def lognormal_of(mean: float, cv: float) -> dict:
    """A lognormal with this mean and coefficient of variation, in the scenario's syntax."""
    sigma = math.sqrt(math.log1p(cv**2))
    return {"dist": "lognormal", "median": mean / math.exp(sigma**2 / 2), "sigma": sigma}


def remaining(loaded, actuals, nominal_gpu_hours: dict[str, float],
              predicted: dict[str, tuple[float, str]] | None = None) -> Remaining:
    """The scenario of the work left at `actuals.as_of` (see the module's docstring).
    `nominal_gpu_hours`: each workload's accelerator-hours per run at its nominal inputs (to weigh
    the work done); `predicted`: each workload's wall hours per run at its nominal MFU and the pool
    that is for (to update MFU from the runs seen; None: no MFU update)."""
    scn = loaded.scenario
    raw = copy.deepcopy(loaded.scenario.model_dump(mode="json", exclude_none=True))
    raw.pop("variants", None)
    raw.pop("actuals", None)  # read already (its map names workloads the work left may not have)
    as_of_time = actuals.as_of if isinstance(actuals.as_of, datetime) else datetime.combine(actuals.as_of, time())
    as_of = as_of_time.date()
    rem = Remaining(raw, as_of, 0.0, 0.0, 0.0, as_of_time=as_of_time)
    written = [list(c["between"]) for c in raw.get("correlations", [])]  # as the user wrote them, for the notes
    # before the workloads move, a workload's position (`workloads[0].mfu`) written as its name, so that it is read
    # like one written so (`_tie`): in the work left the positions move (running remainders come first, done
    # workloads are gone). Only workloads move: the pools keep their order, and so do a price curve's jumps and
    # points, so a position there still means what it did.
    raw["correlations"] = name_positions(raw.get("correlations", []), list_names(raw, ("workloads",)))
    by = actuals.by_workload()
    spec = {w.name: w for w in scn.workloads}
    _workloads_left(rem, raw, by, nominal_gpu_hours, spec)
    _calendar(rem, raw, scn, as_of_time)
    _carry_prices(rem, raw, scn, actuals)
    _update_failures(rem, raw, actuals)
    if predicted:
        _update_mfu(rem, raw, actuals, predicted, spec)
        _update_run_length(rem, raw, actuals, predicted, spec)
    _update_reruns(rem, raw, actuals, spec)
    rem.notes += _tie(raw, spec, written)
    raw.setdefault("simulation", {})["priors"] = "off"  # resolved already: nothing is left to a prior
    rem.actual_usd = _run_costs(rem, loaded, actuals) + sum(e.amount_usd for e in actuals.ledger)
    rem.actual_gpu_hours = sum(r.gpu_hours for r in actuals.runs)
    budget = raw["project"].get("budget_usd")
    if budget is not None:  # the work left's budget is what is left: P(remaining > it) = P(EAC > budget)
        left = raw["project"]["budget_usd"] = max(float(budget) - rem.actual_usd, 0.0)
        rem.notes.append(f"the work left's budget is what is left of it: {units.format_usd(left)} of "
                         f"{units.format_usd(float(budget))}")
    return rem


def _run_costs(rem: Remaining, loaded, actuals) -> float:
    """The runs' cost to date: as given, and a run without one (sacct) priced at its pool's price
    (its workload's first pool when the pool is not known); usage on a reserved or owned pool costs
    nothing more (its commitment is in the ledger)."""
    from sim.billing import TIERS
    from sim.pricing import pool_price

    scn = loaded.scenario
    total, priced, usd = 0.0, 0, 0.0
    for r in actuals.runs:
        if r.cost_usd is not None:
            total += r.cost_usd
            rem.run_costs.append(r.cost_usd)
            continue
        w = next(x for x in scn.workloads if x.name == r.workload)
        pool = scn.pool(r.pool or (w.pools[0] if w.pools else scn.pools[0].name))
        price = pool_price(pool, loaded.catalog, scn.project.start)
        rate = nominal(price.usd_per_gpu_h) if not isinstance(price, str) and TIERS[pool.pricing].bills_usage else 0.0
        priced, usd = priced + 1, usd + r.gpu_hours * rate
        rem.run_costs.append(r.gpu_hours * rate)
    if priced:
        rem.notes.append(f"{priced} run(s) without a cost priced at their pool's price: {units.format_usd(usd)}")
    return total + usd


def _progress(r, per_run: float) -> float:
    """A running run's share of its work done: its progress, else its accelerator-hours over a
    run's at nominal inputs (at most 0.99)."""
    if r.progress is not None:
        return r.progress
    return min(r.gpu_hours / per_run, 0.99) if per_run > 0 else 0.0


def _workloads_left(rem: Remaining, raw: dict, by: dict, nominal: dict[str, float], spec: dict) -> None:
    total = sum(nominal[w["name"]] * int(spec[w["name"]].runs) for w in raw["workloads"]) or 1.0
    done_h, out, now_as = 0.0, [], {}  # now_as: a workload's name -> the workloads its work is now in
    for w in raw["workloads"]:
        name = w["name"]
        runs = int(spec[name].runs)
        mine = by.get(name, [])
        completed = sum(r.state == "completed" for r in mine)
        running = [r for r in mine if r.state == "running"]
        left = max(runs - completed - len(running), 0)
        rem.runs_done[name], rem.runs_running[name], rem.runs_left[name] = completed, len(running), left
        shares = [_progress(r, nominal[name]) for r in running]
        guessed = sum(r.progress is None for r in running)
        if guessed:
            rem.notes.append(f"{name}: {guessed} running run(s) without progress: their share done taken from their "
                             f"accelerator-hours over a run's at nominal inputs ({nominal[name]:,.0f})")
        done_h += nominal[name] * (min(completed, runs) + sum(shares))
        now_as[name] = []
        for r, share in zip(running, shares, strict=True):
            out.append(_running_remainder(w, r, share))
            now_as[name].append(out[-1]["name"])
        if left:
            out.append({**w, "runs": left})
            now_as[name].append(name)
    for w in out:  # wait for what is left of the workloads waited for (nothing, when they are done)
        w["after"] = [n for a in w.get("after", []) for n in now_as.get(a, []) if n != w["name"]]
    raw["workloads"] = out
    rem.done_fraction = done_h / total


TIE_RANK = 0.99  # rank correlation that ties a running run's uncertain inputs to its workload's


def _tie(raw: dict, spec: dict, written: list[list[str]]) -> list[str]:
    """The scenario's correlations carried to the work left, and a workload's copies there (its
    running remainders, and itself if it has runs still to do) tied to one another; a note for each
    of the scenario's correlations dropped (see below), naming it as `written` (its sides as the
    scenario gives them) and why it goes. `spec`: the scenario's workloads by name.

    A workload's copies share its uncertain inputs (one MFU, one size per workload in a
    replication, as in the original scenario): each of their uncertain keys (nested ones too:
    divergence.at, stragglers.fraction, ...; see `_uncertain_keys`) is correlated at TIE_RANK with
    the same key of every other copy that has it (nearly one draw; a rank correlation of 1 would
    make the copula singular; every pair is tied, as tying each to the first only would leave the
    others independent and the matrix not positive definite).

    A correlation naming a workload's key is given to every copy whose key is still uncertain (a
    workload whose only work left is a run under way: to that remainder alone), and one between two
    such keys to every pair of their copies: a copy of an input has the input's correlation with
    every copy of the other (given to some pairs only, the ties would make the matrix not positive
    definite). A correlation goes when one of its sides has no copy left: a done workload, or a key
    no copy keeps uncertain (a running remainder drops divergence, early_stop, ...; see
    `_running_remainder`), as does one naming a key outside the workloads no longer uncertain (a
    price walk restarted from the price last paid). Names are read as the loader reads them
    (`workloads[ a ]` is `workloads[a]`; positions were named already: `name_positions`)."""
    names = list(spec)
    by_name = {w["name"]: w for w in raw["workloads"]}
    copies = {name: [n for n in by_name if _of_workload(n, name)] for name in names}

    def sides(text: str) -> list[str]:
        path = parse_path(text)
        if len(path) >= 2 and path[0] == "workloads" and isinstance(path[1], tuple):
            return [path_str(("workloads", ("name", n), *path[2:])) for n in copies.get(path[1][1], [])
                    if _is_dist(by_name[n], path[2:])]
        return [text] if _is_dist(raw, path) else []

    pairs, notes = [], []
    for c, as_written in zip(raw.get("correlations", []), written, strict=True):
        found = [sides(b) for b in c["between"]]
        pairs += [{"between": list(between), "rank": c["rank"]} for between in itertools.product(*found)]
        if not all(found):
            why = dict.fromkeys(_gone(parse_path(b), raw, copies, spec)
                                for b, f in zip(c["between"], found, strict=True) if not f)
            notes.append(f"correlation {' ~ '.join(as_written)} (rank {float(c['rank']):g}) dropped: "
                         + "; ".join(why))
    for name in names:
        group = [by_name[n] for n in copies[name]]
        keys = {w["name"]: _uncertain_keys(w) for w in group}
        for key in dict.fromkeys(k for ks in keys.values() for k in ks):
            members = [n for n, ks in keys.items() if key in ks]
            for i, m in enumerate(members):  # every pair (tied to the first only, two others would be independent)
                pairs += [{"between": [f"workloads[{m}].{key}", f"workloads[{n}].{key}"], "rank": TIE_RANK}
                          for n in members[i + 1:]]
    raw["correlations"] = pairs  # (remaining() always gives it a list)
    return notes


def _gone(path: tuple, raw: dict, copies: dict[str, list[str]], spec: dict) -> str:
    """Why a side of a correlation (`parse_path`'s segments, a workload named) has no uncertain key
    in the work left (`_tie`): its workload is done, its running remainders drop the key
    (`_running_remainder`), or the key is no longer uncertain (a price walk restarted from the price
    last paid: `_carry_prices`)."""
    if len(path) >= 3 and path[0] == "workloads" and isinstance(path[1], tuple):
        name, key = path[1][1], path[2]
        if not copies.get(name):
            return f"workload {name} has no work left (every run completed)"
        if name not in copies[name] and key in ("divergence", "early_stop"):  # its only work left is under way
            div = spec[name].divergence
            if key == "early_stop":
                how = "which go on to their end (a run under way is not stopped early)"
            elif div is not None and div.rerun:
                how = f"past its divergence point (at {float(nominal(div.at)):g})"
            else:
                how = "which go on to their end (a divergence without rerun is left out for a run under way)"
            return f"the work left of {name} no longer has {key}: it is its run(s) under way, {how}"
    if len(path) == 3 and path[0] == "pools" and path[2] == "price_usd_per_gpu_h":
        sel, pools = path[1], raw["pools"]
        if isinstance(sel, tuple):
            pool = next((p for p in pools if p.get("name") == sel[1]), None)
        else:
            pool = pools[sel] if isinstance(sel, int) and -len(pools) <= sel < len(pools) else None
        if pool is not None and pool.get("price_curve", {}).get("kind") == "random_walk":
            return (f"price of pool {pool['name']} is no longer uncertain (its price walk restarts from the price "
                    "last paid)")
    return f"{path_str(path)} is no longer uncertain in the work left"


def _is_dist(data: Any, path: tuple) -> bool:
    """Whether the value at `path` (`parse_path`'s segments) in `data` is a distribution."""
    v: Any = data
    for seg in path:
        if isinstance(seg, tuple):  # [name] selector on a list of named items
            v = next((x for x in v if isinstance(x, dict) and x.get("name") == seg[1]), None) \
                if isinstance(v, list) else None
        elif isinstance(seg, int):
            v = v[seg] if isinstance(v, list) and -len(v) <= seg < len(v) else None
        else:
            v = v.get(seg) if isinstance(v, dict) else None
    return isinstance(v, dict) and "dist" in v


def _uncertain_keys(w: dict, prefix: str = "") -> list[str]:
    """A workload's uncertain keys: every distribution in it, dotted for a nested one (mfu, tokens,
    divergence.probability, divergence.at, stragglers.fraction, loss_spike.rollback, scaling.efficiency,
    checkpoint.write, ...)."""
    out: list[str] = []
    for k, v in w.items():
        if isinstance(v, dict) and "dist" in v:
            out.append(prefix + k)
        elif isinstance(v, dict):
            out += _uncertain_keys(v, f"{prefix}{k}.")
    return out


def _running_remainder(w: dict, r, share: float) -> dict:
    """A running run as a one-run workload of the work it has left (1 - `share`), on its pool first,
    ahead of the queue, with nothing to wait for."""
    left = 1.0 - share
    key, parse = _size_key(w)
    new = {k: v for k, v in w.items() if k not in ("divergence", "early_stop", "after", "earliest_start",
                                                    "max_concurrent", "arrivals", "runs")}
    div = w.get("divergence")
    rid = re.sub(r"[^A-Za-z0-9_.-]", "-", str(r.run_id))
    new.update(name=f"{w['name']}.running.{rid}", runs=1, priority=int(w.get("priority", 0)) + 1000)
    at = div.get("at", 0.5) if div else None  # (uncertain: drawn by the engine, which diverges only a run not past it)
    if div and div.get("rerun", True) and (isinstance(at, dict) or share < float(at)):
        # its attempt may still go wrong at the divergence point, and a rerun starts from nothing: the whole run,
        # under way (done_at_start), with the workload's divergence
        new.update(divergence=div, done_at_start=share)
    elif key:
        new[key] = scaled(w[key], max(left, 1e-9), parse)
    if r.pool and w.get("pools"):
        new["pools"] = [r.pool, *[p for p in w["pools"] if p != r.pool]]
    elif r.pool:
        new["pools"] = [r.pool]
    return new


def _calendar(rem: Remaining, raw: dict, scn, as_of_time: datetime) -> None:
    """The project starts at the as-of date: passed capacity changes and earliest starts applied,
    reserved commitments kept on their dates (what is left of them from the start of the as-of day),
    the work left begins at the as-of instant (project.start_time). The simulation's clock counts
    from 00:00 of the as-of day, so dated events still to come keep their days and instants."""
    start = scn.project.start
    as_of = as_of_time.date()
    raw["project"]["start"] = as_of.isoformat()
    # the original's start_time holds on its own start day only (it is not a time of every day)
    held = float(raw["project"].pop("start_time", 0.0))
    held = held if as_of == start else 0.0
    if max(held, rem.offset_h) > 0:
        raw["project"]["start_time"] = max(held, rem.offset_h)
    if rem.offset_h > 0:  # nothing begins before the as-of instant; the clock counts from 00:00 of its day
        rem.notes.append(f"the work left begins at {as_of_time.isoformat(' ', 'minutes')} (project.start_time "
                         f"{as_of_time:%H:%M}); its makespan counts from 00:00 of {as_of}, as dates and periods do")
    for p, spec in zip(raw["pools"], scn.pools, strict=True):
        changes = sorted(spec.capacity_changes, key=lambda c: c.date)
        passed = [c for c in changes if c.date <= as_of]
        if passed:
            p["count"] = int(passed[-1].count)
            p["capacity_changes"] = [{"date": c.date.isoformat(), "count": int(c.count)} for c in changes
                                     if c.date > as_of]
        if spec.pricing == "reserved":  # only what is left of the commitment is still to pay
            c0 = spec.commitment_start or start
            end_h = hours_between(c0, as_of) if c0 <= as_of else 0.0  # paid up to the as-of day
            term = float(spec.term) if spec.term is not None else 8760.0
            if c0 <= as_of:
                p["commitment_start"], p["term"] = as_of.isoformat(), max(term - end_h, 1e-6)
                rem.notes.append(f"pool {p['name']}: the commitment paid before {as_of} is sunk; "
                                 f"{max(term - end_h, 0.0) / 24:,.0f} days of it are left")
    for w in raw["workloads"]:
        if w.get("earliest_start") and date.fromisoformat(str(w["earliest_start"])) <= as_of:
            del w["earliest_start"]
    if scn.project.deadline and scn.project.deadline <= as_of:  # the work left has none (P(late) is 1)
        raw["project"].pop("deadline", None)
        rem.notes.append("the deadline has passed")


def observed_price(actuals, pool: str) -> tuple[float, Any] | None:
    """(USD per accelerator-hour, run) of the latest run on `pool` the actuals give a cost and
    accelerator-hours for: its cost over its accelerator-hours (None: no such run). Latest by its
    end, a running run's being the as-of time."""
    seen = [r for r in actuals.runs if r.pool == pool and r.cost_usd and r.gpu_hours > 0]
    if not seen:
        return None
    r = max(seen, key=lambda r: (r.end or actuals.as_of, r.start or actuals.as_of))
    return r.cost_usd / r.gpu_hours, r


def carried(spec, years: float, as_of: date) -> float:
    """The factor a price curve's expected price has moved by from the start to `as_of` (`years`
    later): the decline compounded, and for a random walk the expected effect of the jumps dated
    up to `as_of` (1 + probability x change, at their nominal values)."""
    factor = (1 - float(nominal(spec.annual_decline))) ** years
    for j in getattr(spec, "jumps", ()):
        if j.date <= as_of:
            factor *= 1 + float(nominal(j.probability)) * float(nominal(j.change))
    return factor


def _carry_prices(rem: Remaining, raw: dict, scn, actuals) -> None:
    """Prices from the as-of date on. A declining (exponential) curve's given price is carried to
    the as-of date along its decline. A random walk restarts at the as-of date with the same drift,
    volatility and the jumps still to come, from the price last paid on the pool (the latest run's
    cost over its accelerator-hours, on a pool billed by use), else from its given price carried
    along the expected path (`carried`); a catalog price is the catalog's in force at the as-of
    date (the work left starts then)."""
    from sim.billing import TIERS

    as_of = rem.as_of
    years = hours_between(scn.project.start, as_of) / units.HOURS_PER_YEAR  # the engine's year: 8,760 h
    for p, spec in zip(raw["pools"], scn.pools, strict=True):
        kind = spec.price_curve.kind
        if kind not in ("exponential", "random_walk") or getattr(spec.price_curve, "reference", None):
            continue  # (a decline from a reference date is still anchored there)
        seen = observed_price(actuals, spec.name) if kind == "random_walk" and TIERS[spec.pricing].bills_usage \
            else None
        if seen is not None:
            p["price_usd_per_gpu_h"] = seen[0]
            rem.notes.append(f"pool {p['name']}: the price walk restarts at {as_of} from the price last paid, "
                             f"{units.format_usd(seen[0])}/h (run {seen[1].run_id})")
        elif "price_usd_per_gpu_h" in p:
            p["price_usd_per_gpu_h"] = scaled(p["price_usd_per_gpu_h"], carried(spec.price_curve, years, as_of),
                                              units.parse_plain)
            what = " (the price walk restarts there)" if kind == "random_walk" else " along its decline"
            rem.notes.append(f"pool {p['name']}: price carried to {as_of}{what}")
        elif kind == "random_walk":
            rem.notes.append(f"pool {p['name']}: the price walk restarts at {as_of} from the catalog's price then")


def _update_failures(rem: Remaining, raw: dict, actuals) -> None:
    """The hardware failure rate per accelerator-hour, updated from the interruptions seen."""
    rel = raw.get("reliability", {})
    if rel.get("model") == "none":
        return
    prior = prior_mean_cv(rel.get("failure_rate_per_gpu_h"))
    seen = [r for r in actuals.runs if r.interruptions is not None]
    if prior is None or not seen:
        return
    events, exposure = sum(r.interruptions for r in seen), sum(r.gpu_hours for r in seen)
    mean, cv = gamma_update(*prior, events, exposure)
    rel["failure_rate_per_gpu_h"] = lognormal_of(mean, cv)
    rem.posterior["reliability.failure_rate_per_gpu_h"] = {
        "prior_mean": prior[0], "prior_cv": prior[1], "interruptions_seen": events,
        "gpu_hours_seen": exposure, "posterior_mean": mean, "posterior_cv": cv}


def actual_spend(actuals, costs: list[float] | None = None) -> list[tuple[datetime, float]]:
    """Cumulative actual spend over time up to the as-of time, as (time, USD) points of a line: a
    completed, failed or cancelled run's cost at its end (else its start, else the as-of time), a
    running run's cost spread evenly from its start to the as-of time, a ledger entry at the end of
    its day (none later than the as-of time); a run without a cost counts 0 unless `costs` (one per
    run, as Remaining.run_costs prices them) gives it. A jump is two points
    at the same time (before and after it); the last point is at the as-of time, with the whole
    actual to date."""
    as_of = actuals.as_of if isinstance(actuals.as_of, datetime) else datetime.combine(actuals.as_of, time())
    steps: dict[datetime, float] = {}
    ramps: list[tuple[datetime, float]] = []  # (start, cost) of running runs, spread to as_of
    for i, r in enumerate(actuals.runs):
        cost = costs[i] if costs else (r.cost_usd or 0.0)
        if r.state == "running" and r.start is not None and r.start < as_of:
            ramps.append((r.start, cost))
        else:
            t = min(r.end or r.start or as_of, as_of)
            steps[t] = steps.get(t, 0.0) + cost
    for e in actuals.ledger:
        t = min(datetime.combine(e.date, time()) + timedelta(days=1), as_of)
        steps[t] = steps.get(t, 0.0) + e.amount_usd
    times = sorted({*steps, *(u for u, _ in ramps), as_of})
    ramps.sort()
    points: list[tuple[datetime, float]] = []
    done = slope = intercept = 0.0  # steps booked so far; ramps begun: slope * seconds - intercept
    k = 0
    for t in times:  # seconds counted from as_of (<= 0)
        while k < len(ramps) and ramps[k][0] <= t:
            u, c = ramps[k]
            rate = c / (as_of - u).total_seconds()
            slope, intercept, k = slope + rate, intercept + rate * (u - as_of).total_seconds(), k + 1
        ramp = slope * (t - as_of).total_seconds() - intercept
        for v in (done + ramp, done + steps.get(t, 0.0) + ramp):
            if not points or points[-1] != (t, v):
                points.append((t, v))
        done += steps.get(t, 0.0)
    return points


def cumulative_at(spend_by_month: dict[str, float], start: date, as_of: date) -> float:
    """Spend up to `as_of` from a spend by calendar month (YYYY-MM -> USD), the month of `as_of`
    counted in proportion of its days passed (and the first month from `start`)."""
    total = 0.0
    for label, usd in spend_by_month.items():
        y, m = (int(x) for x in label.split("-"))
        first = max(date(y, m, 1), start)
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        if as_of >= nxt:
            total += usd
        elif as_of > first:
            total += usd * (as_of - first).days / max((nxt - first).days, 1)
    return total


def _instant(rem: Remaining) -> str:
    t = rem.as_of_time or datetime.combine(rem.as_of, time())
    return t.isoformat(timespec="minutes")


def block(rem: Remaining, eac, finish_days, scn, baseline: dict | None) -> dict:
    """The `reforecast` block of summary.json: estimate at completion (actual + remaining) and
    finish date as distributions, the risks, earned value against the baseline (the original
    scenario at its nominal inputs), the posterior updates and how many runs are done.
    `finish_days`: the work left's makespans, in days from 00:00 of the as-of day."""
    import numpy as np

    eac = np.asarray(eac, dtype=float)
    finish = [rem.as_of.toordinal() + d for d in np.asarray(finish_days, dtype=float)]  # days from 00:00 of as_of
    # P5 and P95 at the Weibull plotting positions (the k-th of n values stands for k / (n + 1)): the
    # band a further draw falls in 90% of the time whatever n (linear interpolation's is narrower: 85.5%
    # with 39 replications; benchmarks/reforecast_calibration.py)
    q = np.percentile(eac, [5, 50, 95], method="weibull")
    fq = [date.fromordinal(int(math.floor(x))).isoformat()
          for x in np.percentile(finish, [5, 50, 95], method="weibull")]
    out = {"as_of": rem.as_of.isoformat(), "as_of_time": _instant(rem), "actual_to_date_usd": rem.actual_usd,
           "actual_gpu_hours": rem.actual_gpu_hours, "done_fraction": rem.done_fraction,
           "eac_usd": {"mean": float(eac.mean()), "p5": float(q[0]), "p50": float(q[1]), "p95": float(q[2])},
           "finish_date": {"p5": fq[0], "p50": fq[1], "p95": fq[2]},
           "runs": {"done": rem.runs_done, "running": rem.runs_running, "left": rem.runs_left},
           "posterior": rem.posterior, "notes": rem.notes}
    if scn.project.budget_usd:
        out["p_over_budget"] = float(np.mean(eac > float(scn.project.budget_usd)))
    if scn.project.deadline:
        out["p_late"] = float(np.mean(np.floor(finish) > scn.project.deadline.toordinal()))
    if baseline:
        bac = float(baseline["cost_usd"])
        pv = cumulative_at({k[len("spend_usd_"):]: v for k, v in baseline.items() if k.startswith("spend_usd_")},
                           scn.project.start, rem.as_of)
        ev, ac = bac * rem.done_fraction, rem.actual_usd
        out["earned_value"] = {"budget_at_completion_usd": bac, "planned_value_usd": pv, "earned_value_usd": ev,
                               "actual_cost_usd": ac, "cpi": ev / ac if ac > 0 else None,
                               "spi": ev / pv if pv > 0 else None,
                               "variance_at_completion_usd": bac - float(eac.mean())}
    return out


MIN_OBS_LOG_SD = 0.01  # the least run-to-run spread of a run's speed (log scale): timing noise, checkpoint writes
POINT_LOG_SD = 0.15  # how loosely a point MFU is held as a prior


def _log_prior(mfu) -> tuple[float, float]:
    """Log-mean and log-sd of an MFU given as a number or a distribution (from its P5 and P95)."""
    from sim.distributions import Dist

    if isinstance(mfu, Dist):
        f = mfu.frozen()
        lo, hi = math.log(f.ppf(0.05)), math.log(f.ppf(0.95))
        return (lo + hi) / 2, max((hi - lo) / (2 * Z95), 1e-3)
    return math.log(float(mfu)), POINT_LOG_SD


def realised_mfu(runs, hours_per_run: float, nominal_mfu: float, pool: str, whole: bool = True,
                 ckpt: tuple[float, float] = (0.0, 0.0)) -> list[float]:
    """The MFU each clean run achieved (no interruption recorded, on the pool the prediction is for):
    the nominal MFU x predicted hours x the share of its work done / the compute hours in the hours
    held. A completed run did all its work unless its progress says otherwise; with `whole` False (a
    workload with runs stopped early) only runs that give their progress count. `ckpt`: (compute
    hours between checkpoints, hours a write takes) at nominal inputs: the writes in the hours held
    are not slowness (the simulation of the work left adds them again), so the compute hours are
    what the write pattern leaves of them (sim.reliability.progress)."""
    from sim.reliability import progress

    out = []
    for r in runs:
        if r.interruptions != 0 or r.pool != pool or r.start is None or r.accelerators <= 0:
            continue
        held = progress(r.gpu_hours / r.accelerators, *ckpt)
        if r.progress is not None:
            share = r.progress
        else:
            share = 1.0 if r.state == "completed" and whole else 0.0
        if share > 0 and held > 0:
            out.append(nominal_mfu * hours_per_run * share / held)
    return out


def length_log_sd(run_length) -> float:
    """The log-scale spread of a run's length the scenario gives: sigma for lognormal, pi / sqrt(6)
    for exponential (the sd of the log of an exponential), 0 for fixed."""
    if run_length.kind == "lognormal":
        return float(run_length.sigma)
    return math.pi / math.sqrt(6) if run_length.kind == "exponential" else 0.0


def normal_update(mu0: float, sd0: float, ys: list[float], sd_obs: float) -> tuple[float, float]:
    """Normal-normal conjugate update of a mean from observations `ys` of known spread."""
    prec = 1 / sd0**2 + len(ys) / sd_obs**2
    mean = (mu0 / sd0**2 + sum(ys) / sd_obs**2) / prec
    return mean, math.sqrt(1 / prec)


def _update_mfu(rem: Remaining, raw: dict, actuals, predicted: dict, spec: dict) -> None:
    """Each workload's MFU (in FLOP terms) updated on the log scale from its clean runs: the prior's
    log-mean and log-sd, the runs' log MFU with their own spread (with fewer than 3 runs, the spread
    of run length the scenario gives: see `length_log_sd`), at least MIN_OBS_LOG_SD."""
    for name, runs in actuals.by_workload().items():
        w = spec.get(name)
        if w is None or w.mfu is None or name not in predicted:
            continue
        hours, pool, *ckpt = predicted[name]
        seen = realised_mfu(runs, hours, nominal(w.mfu), pool, w.early_stop is None, tuple(ckpt) or (0.0, 0.0))
        if not seen:
            continue
        ys = [math.log(x) for x in seen]
        sd_obs = max(length_log_sd(w.run_length) if len(ys) < 3 else statistics.stdev(ys), MIN_OBS_LOG_SD)
        mu0, sd0 = _log_prior(w.mfu)
        mu, sd = normal_update(mu0, sd0, ys, sd_obs)
        value = {"dist": "lognormal", "median": math.exp(mu), "sigma": sd, "clip": True}
        for x in raw["workloads"]:
            if _of_workload(x["name"], name):
                x["mfu"] = value
        rem.posterior[f"workloads[{name}].mfu"] = {
            "prior_median": math.exp(mu0), "prior_log_sd": sd0, "runs_seen": len(ys),
            "seen_median": math.exp(sum(ys) / len(ys)), "posterior_median": math.exp(mu), "posterior_log_sd": sd}


# --------------------------------------------------------------------------------------------
# Run-to-run spread of run length, and reruns


PRIOR_DOF = 4.0  # the scenario's run-length sigma is held as worth this many runs' spread
PRIOR_ATTEMPTS = 10.0  # a point divergence probability is held as worth this many attempts


def variance_update(sigma0: float, dof0: float, ys: list[float]) -> tuple[float, float]:
    """Posterior scale and degrees of freedom of a normal spread (scaled inverse chi-squared,
    conjugate, the mean unknown): the prior sigma0 worth dof0 observations, then the squared
    deviations of `ys` from their mean on len(ys) - 1 degrees of freedom:
    dof = dof0 + n - 1, sigma^2 = (dof0 sigma0^2 + sum (y - mean)^2) / dof."""
    n = len(ys)
    mean = math.fsum(ys) / n
    ss = math.fsum((y - mean) ** 2 for y in ys)
    dof = dof0 + n - 1
    return math.sqrt((dof0 * sigma0**2 + ss) / dof), dof


def _update_run_length(rem: Remaining, raw: dict, actuals, predicted: dict, spec: dict) -> None:
    """Each workload's run-to-run spread of length (run_length lognormal, or fixed: sigma 0),
    updated from the log speed of its clean runs (the runs the MFU update reads: with one MFU per
    workload, their spread is the spread of run length)."""
    for name, runs in actuals.by_workload().items():
        w = spec.get(name)
        if w is None or w.run_length.kind == "exponential" or name not in predicted:
            continue
        hours, pool, *ckpt = predicted[name]
        m0 = nominal(w.mfu) if w.mfu is not None else 1.0
        seen = realised_mfu(runs, hours, m0, pool, w.early_stop is None, tuple(ckpt) or (0.0, 0.0))
        if len(seen) < 2:
            continue
        ys = [math.log(x) for x in seen]
        sigma0 = float(w.run_length.sigma) if w.run_length.kind == "lognormal" else 0.0
        sigma, dof = variance_update(sigma0, PRIOR_DOF, ys)
        for x in raw["workloads"]:
            if _of_workload(x["name"], name):
                x["run_length"] = {"kind": "lognormal", "sigma": sigma} if sigma > 0 else {"kind": "fixed"}
        rem.posterior[f"workloads[{name}].run_length.sigma"] = {
            "prior_sigma": sigma0, "prior_dof": PRIOR_DOF, "runs_seen": len(ys), "seen_sd": statistics.stdev(ys),
            "posterior_sigma": sigma, "posterior_dof": dof}


def beta_prior(p) -> tuple[float, float]:
    """(a, b) of a beta prior for a probability: a point p held as worth PRIOR_ATTEMPTS attempts (at
    least 1/p and 1/(1 - p), so that a, b >= 1); a distribution by its mean and variance (a and b at
    least 1)."""
    from sim.distributions import Dist

    if isinstance(p, Dist):
        f = p.frozen()
        mean, var = float(f.mean()), float(f.var())
        if var <= 0 or not 0 < mean < 1:
            return beta_prior(mean)
        total = mean * (1 - mean) / var - 1
        return max(mean * total, 1.0), max((1 - mean) * total, 1.0)
    p = min(max(float(p), 1e-6), 1 - 1e-6)
    n0 = max(PRIOR_ATTEMPTS, 1 / p, 1 / (1 - p))
    return p * n0, (1 - p) * n0


def beta_as_pert(a: float, b: float) -> dict:
    """Beta(a, b) with a, b >= 1 in the scenario's syntax: a PERT on [0, 1] is Beta(1 + lambda mode,
    1 + lambda (1 - mode)), so lambda = a + b - 2 and mode = (a - 1) / lambda."""
    lam = a + b - 2
    if lam <= 0:
        return {"dist": "uniform", "min": 0.0, "max": 1.0}
    return {"dist": "pert", "min": 0.0, "mode": (a - 1) / lam, "max": 1.0, "lambda": lam}


def _update_reruns(rem: Remaining, raw: dict, actuals, spec: dict) -> None:
    """Each rerun workload's divergence probability (so its number of reruns), beta-binomial: a
    failed attempt is a divergence; a completed attempt, or a running one past the point where
    runs diverge, is one that did not."""
    for name, runs in actuals.by_workload().items():
        w = spec.get(name)
        div = w.divergence if w is not None else None
        if div is None or not div.rerun:
            continue
        at = float(nominal(div.at))  # (uncertain: its median)
        diverged = sum(r.state == "failed" for r in runs)
        passed = sum(r.state == "completed" or (r.state == "running" and (r.progress or 0.0) >= at) for r in runs)
        if diverged + passed == 0:
            continue
        a0, b0 = beta_prior(div.probability)
        a, b = a0 + diverged, b0 + passed
        for x in raw["workloads"]:
            if _of_workload(x["name"], name) and x.get("divergence"):
                x["divergence"] = {**x["divergence"], "probability": beta_as_pert(a, b)}
        rem.posterior[f"workloads[{name}].divergence.probability"] = {
            "prior_a": a0, "prior_b": b0, "prior_mean": a0 / (a0 + b0), "diverged": diverged,
            "attempts": diverged + passed, "posterior_a": a, "posterior_b": b, "posterior_mean": a / (a + b),
            "reruns_per_run": a / (a + b) / (1 - a / (a + b)) if a < a + b else math.inf}


def _sd_beta(a: float, b: float) -> float:
    return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))


def posterior_rows(post: dict) -> list[list[str]]:
    """Each updated input before and after what was seen: [key, prior, prior spread, seen,
    posterior, posterior spread], for the terminal and the report."""
    rows = []
    for key, p in post.items():
        if "prior_median" in p:  # an MFU, log scale
            rows.append([key, f"median {p['prior_median']:.3g}", f"log-sd {p['prior_log_sd']:.2f}",
                         f"{p['runs_seen']:,} clean runs, median {p['seen_median']:.3g}",
                         f"median {p['posterior_median']:.3g}", f"log-sd {p['posterior_log_sd']:.2f}"])
        elif "prior_sigma" in p:  # a run-length spread
            rows.append([key, f"sigma {p['prior_sigma']:.3g}", f"worth {p['prior_dof']:g} runs",
                         f"{p['runs_seen']:,} clean runs, log-sd {p['seen_sd']:.3g}",
                         f"sigma {p['posterior_sigma']:.3g}", f"{p['posterior_dof']:g} degrees of freedom"])
        elif "prior_a" in p:  # a divergence probability
            rows.append([key, f"mean {p['prior_mean']:.3g}", f"sd {_sd_beta(p['prior_a'], p['prior_b']):.3g}",
                         f"{p['diverged']:,} diverged of {p['attempts']:,} attempts",
                         f"mean {p['posterior_mean']:.3g}", f"sd {_sd_beta(p['posterior_a'], p['posterior_b']):.3g}"])
        else:  # a rate, gamma-Poisson
            seen = (f"{p['interruptions_seen']:,} interruptions in {p['gpu_hours_seen']:,.0f} accelerator-hours"
                    if "interruptions_seen" in p else "")
            rows.append([key, f"mean {p['prior_mean']:.3g}", f"cv {p['prior_cv']:.2f}", seen,
                         f"mean {p['posterior_mean']:.3g}", f"cv {p['posterior_cv']:.2f}"])
    return rows


def _of_workload(name: str, workload: str) -> bool:
    """Whether a workload of the work left is `workload` or one of its running runs (`_running_remainder`)."""
    return name == workload or name.startswith(workload + ".running.")
