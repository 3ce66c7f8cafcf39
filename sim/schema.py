"""The scenario format: pydantic models, validated once at the boundary.

Units live in key names or in the field's documented unit; readable numbers ("110M", "20 min")
are converted here. Any field typed `Uncertain` may also be a distribution mapping
(see sim.distributions). Unknown keys are rejected everywhere.

The models describe the whole format; cross-references that need the catalog (accelerator ids,
pool sizes, dependency cycles) are checked in sim.loader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator, model_validator

from sim import units
from sim.billing import TIERS
from sim.compute import METHOD_K
from sim.distributions import Bounds, Dist, parse_dist
from sim.policies import FAILURE_MODELS, SCHEDULERS


@dataclass(frozen=True)
class Unit:
    """Metadata for documentation: the unit a field is read in and whether it may be uncertain."""

    name: str
    uncertain: bool = False


def _serialize(v: Any) -> Any:
    if isinstance(v, Dist):
        spec: dict[str, Any] = {"dist": v.kind, **v.params}
        if v.kind == "choice":
            spec["values"] = list(v.values)
            spec["weights"] = list(v.weights)
        if v.clip:
            spec["clip"] = True
        if v.round:
            spec["round"] = True
        return spec
    return v


def _number(parser, bounds: Bounds, uncertain: bool):
    def validate(v: Any):
        if isinstance(v, Dist):
            return v
        if isinstance(v, dict):
            if not uncertain:
                raise ValueError(f"expected a single number here (this key cannot be a distribution), got {v!r}")
            if "dist" not in v:
                raise ValueError(
                    "expected a number or a distribution such as {dist: uniform, min: .., max: ..}; "
                    f"got a mapping without `dist`: {v!r}"
                )
            return parse_dist(v, parser, bounds)
        try:
            x = parser(v)
        except ValueError as e:
            hint = units.range_hint(v, parser) if uncertain and isinstance(v, str) else None
            if hint:
                raise ValueError(f"{e}; {hint}") from None
            raise
        rule = bounds.check(x)
        if rule:
            raise ValueError(f"{rule}, got {v!r}" if isinstance(v, str) else f"{rule}, got {x:g}")
        return int(x) if bounds.integer else x

    return validate


def num(parser, unit: str, *, lo=None, hi=None, lo_strict=False, hi_strict=False, integer=False, uncertain=True):
    """An annotated number type: parsed by `parser`, checked against bounds, maybe a distribution."""
    b = Bounds(lo, hi, lo_strict, hi_strict, integer)
    base = (int if integer else float) | Dist if uncertain else (int if integer else float)
    return Annotated[
        base,
        BeforeValidator(_number(parser, b, uncertain)),
        PlainSerializer(_serialize),
        Unit(unit, uncertain),
    ]


# Field types --------------------------------------------------------------------------------
PosCount = num(units.parse_count, "count", lo=0, lo_strict=True)
RunCount = num(units.parse_count, "count", lo=1, integer=True)
FixedPosInt = num(units.parse_count, "count", lo=1, integer=True, uncertain=False)
FixedInt0 = num(units.parse_count, "count", lo=0, integer=True, uncertain=False)
Flop = num(units.parse_flop, "FLOP", lo=0, lo_strict=True)
FlopPerS = num(units.parse_flop, "FLOP/s", lo=0, lo_strict=True, uncertain=False)
PosHours = num(units.parse_duration_h, "duration (hours)", lo=0, lo_strict=True)
Hours = num(units.parse_duration_h, "duration (hours)", lo=0)
FixedPosHours = num(units.parse_duration_h, "duration (hours)", lo=0, lo_strict=True, uncertain=False)
Usd = num(units.parse_usd, "USD", lo=0)
FixedUsd = num(units.parse_usd, "USD", lo=0, uncertain=False)
Fraction01 = num(units.parse_fraction, "fraction", lo=0, hi=1)
FractionPos = num(units.parse_fraction, "fraction", lo=0, hi=1, lo_strict=True)
Decline = num(units.parse_fraction, "fraction per year", lo=-1, hi=1, hi_strict=True)
Rate = num(units.parse_plain, "per accelerator-hour", lo=0)
NodeRate = num(units.parse_plain, "per node-hour", lo=0)
RunRate = num(units.parse_plain, "per run-hour", lo=0)
PosFactor = num(units.parse_plain, "factor", lo=0, lo_strict=True)
FixedPosFactor = num(units.parse_plain, "factor", lo=0, lo_strict=True, uncertain=False)
Watts = num(units.parse_plain, "W", lo=0, lo_strict=True, uncertain=False)
GB = num(units.parse_plain, "GB", lo=0, lo_strict=True, uncertain=False)
Intensity = num(units.parse_plain, "gCO2/kWh", lo=0)
PUE = num(units.parse_plain, "ratio", lo=1)
UsdPerKwh = num(units.parse_usd, "USD/kWh", lo=0)
Rho = num(units.parse_plain, "rank correlation", lo=-1, hi=1, uncertain=False)

Date = Annotated[date, BeforeValidator(units.parse_date), Unit("date YYYY-MM-DD")]
TimeOfDay = num(units.parse_time_of_day, "time of day (hours after 00:00)", lo=0, hi=24, hi_strict=True,
                uncertain=False)


def _deadline(value: object) -> date:
    try:
        return units.parse_date(value)
    except ValueError:
        raise ValueError(f"expected a date as YYYY-MM-DD or a duration after project.start such as '4 mo', got "
                         f"{value!r}") from None


Deadline = Annotated[date, BeforeValidator(_deadline), Unit("date YYYY-MM-DD, or a duration after start")]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=80)]


@lru_cache(maxsize=1)
def carbon_default_entries() -> dict[str, dict]:
    """sim/data/carbon.yaml: each default with its value, source and date."""
    return yaml.safe_load(resources.files("sim").joinpath("data/carbon.yaml").read_text())


def carbon_defaults() -> dict[str, float]:
    return {k: float(v["value"]) for k, v in carbon_default_entries().items()}


@lru_cache(maxsize=1)
def price_path_defaults() -> dict:
    """The default drift and volatility of random price paths (written by `python -m sim.pricefit`)."""
    return yaml.safe_load(resources.files("sim").joinpath("data/price_paths.yaml").read_text())


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=False, arbitrary_types_allowed=True)


# --- project -----------------------------------------------------------------------------------
def _is_date(text: str) -> bool:
    try:
        units.parse_date(text)
    except ValueError:
        return False
    return True


class Project(Strict):
    name: Name = Field(description="Short name of the project; used for output folders.")
    description: str = Field("", description="Free text shown in reports.")
    start: Date = Field(description="Calendar date the project starts; time zero of the simulation.")
    start_time: TimeOfDay | None = Field(None, description="Time of day work may begin on `start` (`14:30`); nothing "
                                         "runs before it. Dates, periods and finish dates still count from 00:00 of "
                                         "`start`. A re-forecast sets it to its as-of time.")
    currency: Literal["USD"] = Field("USD", description="Currency of every price. Only USD for now.")
    budget_usd: FixedUsd | None = Field(None, description="Budget, for P(cost > budget).")
    deadline: Deadline | None = Field(None, description="Date the project should finish by, or a duration after "
                                  "`start` such as `4 mo` (calendar months and years; weeks, days and hours "
                                  "counted on, to the day they end in).")

    @model_validator(mode="before")
    @classmethod
    def _relative_deadline(cls, data: Any) -> Any:
        """`deadline: 4 mo` (a duration after `start`) -> the date it ends on."""
        given = data.get("deadline") if isinstance(data, dict) else None
        if given is None or isinstance(given, date) or (isinstance(given, str) and _is_date(given)):
            return data
        try:
            start = units.parse_date(data.get("start"))
        except ValueError:
            return data  # the start's own message says what is wrong
        after = units.date_after(start, given)
        return data if after is None else {**data, "deadline": after}

    def begin_h(self, earliest: date | None = None) -> float:
        """Hours after 00:00 of `start` before which a workload cannot begin: `start_time`, or the
        day `earliest` (an earliest_start) if later."""
        day = units.hours_between(self.start, earliest) if earliest is not None else 0.0
        return max(day, float(self.start_time or 0.0))

    @model_validator(mode="after")
    def _deadline_after_start(self):
        if self.deadline is not None and self.deadline <= self.start:
            raise ValueError(f"deadline must be after start ({self.start}), got {self.deadline}")
        return self


# --- accelerators ------------------------------------------------------------------------------
class AcceleratorSpec(Strict):
    base: str | None = Field(None, description="Accelerator to start from: a catalog id or another entry of this "
                             "`accelerators:` section; keys given here override it.")
    name: str | None = Field(None, description="Display name.")
    vendor: str | None = Field(None, description="Maker.")
    peak_flop_per_s: FlopPerS | None = Field(
        None, description="Dense BF16/FP16 peak per accelerator (no sparsity), e.g. 989T."
    )
    tdp_w: Watts | None = Field(None, description="Maximum power per accelerator, watts.")
    power_w: Watts | None = Field(None, description="Measured mean draw of one accelerator while training, watts "
                                  "(instead of tdp_w x carbon.power_factor).")
    host_w: Watts | None = Field(None, description="The host's share per accelerator while busy (CPUs, memory, "
                                 "network, fans), watts; counted when carbon.host_power is `catalog`.")
    memory_gb: GB | None = Field(None, description="Accelerator memory, GB.")
    source: str | None = Field(None, description="Where the figures come from.")
    date: Date | None = Field(None, description="Date of the source.")
    note: str | None = Field(None, description="Free text.")


# --- pools -------------------------------------------------------------------------------------
class ConstantCurve(Strict):
    kind: Literal["constant"] = Field(description="Price stays at the pool's price.")


class ExponentialCurve(Strict):
    kind: Literal["exponential"] = Field(description="Price falls by a constant fraction per year.")
    annual_decline: Decline = Field(description="Fraction the price falls per year (0.2 = 20%/year).")
    reference: Date | None = Field(
        None, description="Date at which the price equals the pool's price; default project.start."
    )


class PricePoint(Strict):
    date: Date = Field(description="Date of the point.")
    price_usd_per_gpu_h: Usd = Field(description="Price per accelerator-hour on that date.")


class PiecewiseCurve(Strict):
    kind: Literal["piecewise"] = Field(description="Linear between dated points, flat outside them.")
    points: list[PricePoint] = Field(min_length=1, description="Dated prices, in date order.")

    @model_validator(mode="after")
    def _sorted(self):
        dates = [p.date for p in self.points]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            raise ValueError("points must be in strictly increasing date order")
        return self


class PriceJump(Strict):
    date: Date = Field(description="Date of the jump (a new generation's release, a price cut); a jump on or before "
                       "project.start is already in the pool's price and is ignored.")
    change: num(units.parse_fraction, "fraction", lo=-1, lo_strict=True) = Field(
        description="Relative change of the price at the jump (-0.3 = 30% cheaper from that date); may be a "
        "distribution, drawn per replication like any uncertain input."
    )
    probability: Fraction01 = Field(1.0, description="Chance that the jump happens at all (drawn per replication "
                                    "from the price path's stream).")


class RandomWalkCurve(Strict):
    kind: Literal["random_walk"] = Field(
        description="A random price path (geometric Brownian motion of the log price on a fixed step, with optional "
        "jumps); each replication draws its own. E[price at t] = price x (1 - annual_decline)^(t / 1 y) x the "
        "expected jumps; volatility 0 gives the exponential curve exactly."
    )
    annual_decline: Decline = Field(
        default_factory=lambda: price_path_defaults()["annual_decline"],
        description="Fraction the EXPECTED price falls per year; default: fitted to the catalog's dated prices "
        "(sim/data/price_paths.yaml, `python -m sim.pricefit`).",
    )
    volatility: num(units.parse_fraction, "per square-root year", lo=0) = Field(
        default_factory=lambda: price_path_defaults()["volatility"],
        description="Standard deviation of the log price's change over one year (0.3 = 30%); default: fitted to the "
        "catalog's dated prices (sim/data/price_paths.yaml).",
    )
    step: FixedPosHours = Field(730.0, description="Time between price moves (default 1 mo).")
    market: Name | None = Field(
        None, description="Pools naming the same market draw the same shocks in a replication (their prices move "
        "together; variants compared share them); default: the pool's accelerator id."
    )
    jumps: list[PriceJump] = Field(default_factory=list, description="Dated jumps of the price.")


PriceCurve = Annotated[ConstantCurve | ExponentialCurve | PiecewiseCurve | RandomWalkCurve,
                       Field(discriminator="kind")]


class Preemption(Strict):
    rate_per_node_h: NodeRate | None = Field(None, description="Interruptions per node-hour.")
    band: Literal["<5%", "5-10%", "10-15%", "15-20%", ">20%"] | None = Field(
        None, description="AWS Spot Advisor monthly interruption band, instead of a rate."
    )
    notice: Hours = Field(0.0, description="Warning before the node is taken (lets a checkpoint finish).")
    co_interruption: Fraction01 = Field(
        0.0, description="Chance that a preemption reclaims every node of the pool in use at once (spot capacity "
        "of one type in one zone is often reclaimed together), so every run on it is preempted."
    )

    @model_validator(mode="after")
    def _one(self):
        if (self.rate_per_node_h is None) == (self.band is None):
            raise ValueError("give exactly one of rate_per_node_h or band")
        return self


class Availability(Strict):
    fraction: FractionPos = Field(description="Share of the time the pool's capacity can be obtained; the rest "
                                  "is outages (no capacity to be had), whose starts form a Poisson process.")
    mean_outage: PosHours = Field(description="Mean length of an outage (exponential).")


class Obtain(Strict):
    quota: num(units.parse_count, "count", lo=1, integer=True) | None = Field(
        None, description="Most accelerators the provider lets you hold at once (the pool's capacity is the smaller "
        "of count and quota); may be a distribution, drawn per replication."
    )
    p_within: num(units.parse_fraction, "fraction", lo=0, hi=1, lo_strict=True, hi_strict=True) | None = Field(
        None, description="Chance that a request for `accelerators` is filled within `wait` (with `wait`)."
    )
    wait: PosHours | None = Field(None, description="The wait `p_within` is for, e.g. 2 d.")
    accelerators: FixedPosInt | None = Field(
        None, description="Size of the request p_within and wait describe; default: the pool's count."
    )
    growth: num(units.parse_plain, "exponent", lo=0, hi=4, uncertain=False) = Field(
        1.0, description="The mean wait of a request of N accelerators grows as (N / accelerators)^growth "
        "(1: proportional; 0: the same whatever N)."
    )

    @model_validator(mode="after")
    def _given(self):
        if (self.p_within is None) != (self.wait is None):
            raise ValueError("give p_within and wait together (the chance a request is filled within that wait)")
        if self.quota is None and self.wait is None:
            raise ValueError("give a quota, or p_within and wait, or both")
        return self


class CapacityChange(Strict):
    date: Date = Field(description="Date the pool's size changes.")
    count: num(units.parse_count, "count", lo=0, integer=True, uncertain=False) = Field(
        description="Accelerators in the pool from that date."
    )


class Pool(Strict):
    name: Name = Field(description="Pool name, referred to by workloads[].pools and fallback.")
    accelerator: str = Field(description="Accelerator id (catalog or `accelerators:`).")
    count: FixedPosInt = Field(description="Accelerators in the pool at project start.")
    node_size: FixedPosInt | None = Field(
        None, description="Accelerators per node (failure, preemption unit); default min(8, count)."
    )
    pricing: Literal[tuple(TIERS)] = Field(  # the tiers of sim/billing.py
        "on_demand", description="on_demand and spot bill busy hours; reserved bills the commitment; "
        "owned amortizes a purchase."
    )
    provider: str | None = Field(None, description="Cloud provider for catalog prices (gcp, aws, ...).")
    price_usd_per_gpu_h: Usd | None = Field(
        None, description="Price per accelerator-hour; default: the catalog price in force at project.start."
    )
    term: FixedPosHours | None = Field(
        None, description="Reserved only: commitment length (catalog knows 1 y and 3 y); default 1 y."
    )
    commitment_start: Date | None = Field(None, description="Reserved only: default project.start. A term begun "
                                          "before project.start is billed from project.start on (the rest is sunk).")
    purchase_usd_per_gpu: FixedUsd | None = Field(
        None, description="Owned only: purchase price per accelerator incl. its share of servers/network."
    )
    lifetime: FixedPosHours = Field(35040.0, description="Owned only: amortization period (default 4 y).")
    energy_usd_per_kwh: UsdPerKwh | None = Field(None, description="Owned only: electricity price.")
    price_curve: PriceCurve = Field(
        default_factory=lambda: ConstantCurve(kind="constant"), description="How the price moves over time."
    )
    preemption: Preemption | None = Field(None, description="Spot only: interruption rate or band, notice.")
    fallback: str | None = Field(None, description="Pool a preempted run moves to.")
    availability: Availability | None = Field(
        None, description="On-demand and spot only: the pool's capacity is unobtainable for periods. During an "
        "outage nothing new starts on it (queued and preempted runs wait or fall back); runs already on it go "
        "on (spot preemptions still strike them)."
    )
    obtain: Obtain | None = Field(
        None, description="On-demand and spot only: how much capacity can be had and how fast. Without it the "
        "pool's count is assumed obtainable at once, whenever asked (printed as an assumption). Each start of a "
        "run on the pool is a request: its accelerators are set aside, and it starts (and is billed) after a wait "
        "drawn per request (exponential, mean from p_within and wait, growing with its size)."
    )
    spares: FixedInt0 = Field(0, description="Hot spare nodes: a failed node is swapped for a free spare at "
                              "once; a repaired node goes back to the spares. Spares are held, billed and draw idle "
                              "power like capacity: with a reservation's term or owned capacity over the project; "
                              "on demand or spot from the start to the end of the project.")
    capacity_changes: list[CapacityChange] = Field(
        default_factory=list, description="Dated changes of the pool's size (hardware arriving)."
    )
    pue: PUE | None = Field(None, description="Overrides carbon.pue for this pool.")
    grid_gco2_per_kwh: Intensity | None = Field(None, description="Overrides carbon.grid_gco2_per_kwh.")
    carbon_profile: str | None = Field(None, description="Overrides carbon.profile for this pool: a shipped grid "
                                       "profile, a cloud region's id (see `sim grid`) or a CSV file.")
    power_factor: FractionPos | None = Field(None, description="Share of TDP a busy accelerator of this pool draws "
                                             "(overrides the accelerator's power_w and carbon.power_factor).")
    host_w_per_node: Watts | None = Field(None, description="Power of one node's host while busy (CPUs, memory, "
                                          "network, fans), watts, shared by its node_size accelerators.")

    @property
    def max_count(self) -> int:
        """The most accelerators the pool ever has (a run larger than this can never run on it)."""
        most = max([self.count, *(c.count for c in self.capacity_changes)])
        quota = self.obtain.quota if self.obtain is not None else None
        return min(most, quota) if isinstance(quota, int) else most  # a distribution: known once sampled

    @property
    def nodes_of(self) -> int:
        return self.node_size if self.node_size is not None else min(8, self.count)

    @model_validator(mode="after")
    def _tier_keys(self):
        for tier in TIERS.values():
            given = [k for k in tier.keys if getattr(self, k) is not None]
            if tier.name != self.pricing and given:
                verb = "applies" if len(tier.keys) == 1 else "apply"
                raise ValueError(f"{' and '.join(tier.keys)} {verb} to {tier.name} pools only (pricing is "
                                 f"{self.pricing})")
        if self.availability is not None and self.pricing not in ("on_demand", "spot"):
            raise ValueError(f"availability applies to on_demand and spot pools only (pricing is {self.pricing}): "
                             "reserved and owned capacity is yours")
        if self.carbon_profile is not None and self.grid_gco2_per_kwh is not None:
            raise ValueError("give grid_gco2_per_kwh or carbon_profile, not both")
        if self.obtain is not None and self.pricing not in ("on_demand", "spot"):
            raise ValueError(f"obtain applies to on_demand and spot pools only (pricing is {self.pricing}): "
                             "reserved and owned capacity is yours")
        if self.node_size is not None and self.count % self.node_size:
            raise ValueError(f"count must be a multiple of node_size ({self.node_size}), got {self.count}")
        return self


# --- workloads ---------------------------------------------------------------------------------
class ConstantScaling(Strict):
    kind: Literal["constant"] = Field(description="One efficiency whatever the run's size.")
    efficiency: FractionPos = Field(1.0, description="Multiplies throughput.")


class PerDoublingScaling(Strict):
    kind: Literal["per_doubling"] = Field(description="Efficiency falls for each doubling of size.")
    efficiency: FractionPos = Field(description="Factor per doubling of accelerators beyond `reference`.")
    reference: FixedPosInt = Field(8, description="Accelerators at which efficiency is 1.")


Scaling = Annotated[ConstantScaling | PerDoublingScaling, Field(discriminator="kind")]


class Divergence(Strict):
    probability: Fraction01 = Field(description="Chance that an attempt diverges or is abandoned.")
    at: FractionPos = Field(0.5, description="Fraction of the run done when it is abandoned.")
    rerun: bool = Field(True, description="Whether an abandoned run is started again from scratch.")

    @model_validator(mode="after")
    def _finite(self):
        p = self.probability
        if self.rerun and not isinstance(p, Dist) and p >= 1:
            raise ValueError("probability must be < 1 when rerun is true (the run would never finish)")
        return self


class EarlyStop(Strict):
    fraction_of_runs: Fraction01 = Field(description="Share of the workload's runs stopped early.")
    at: FractionPos = Field(description="Fraction of their length at which they stop.")


class LossSpike(Strict):
    rate_per_h: RunRate = Field(description="Loss spikes per run-hour (the run rolls back instead of "
                                "starting over).")
    rollback: Hours = Field(description="Work thrown away beyond the last checkpoint when one happens.")


class Stragglers(Strict):
    fraction: Fraction01 = Field(description="Share of runs slowed by a straggling node or link.")
    slowdown: num(units.parse_plain, "factor", lo=1) = Field(
        description="Median factor on a straggling run's compute time (1.25 = 25% slower)."
    )
    sigma: num(units.parse_plain, "log-space sd", lo=0, uncertain=False) = Field(
        0.0, description="Run-to-run spread of the slowdown (lognormal around the median, never below 1)."
    )


class Checkpoint(Strict):
    interval: Interval = Field(
        "auto", description="Time between checkpoints, `auto` (Young/Daly optimum) or `none`."
    )
    write: Hours = Field(0.0, description="Time to write one checkpoint (run paused).")


def _interval(v: Any):
    if isinstance(v, str) and v.strip() in ("auto", "none"):
        return v.strip()
    x = units.parse_duration_h(v)
    if x <= 0:
        raise ValueError(f"must be > 0, `auto` or `none`, got {v!r}")
    return x


Interval = Annotated[str | float, BeforeValidator(_interval), Unit("duration (hours), `auto` or `none`")]

class RunLength(Strict):
    kind: Literal["fixed", "lognormal", "exponential"] = Field(
        "fixed", description="fixed: every run the workload's size; lognormal: median = size, spread `sigma`; "
        "exponential: mean = size."
    )
    sigma: num(units.parse_plain, "log-space sd", lo=0, uncertain=False) = Field(
        0.0, description="lognormal only: run-to-run spread of a run's length."
    )


class Arrivals(Strict):
    kind: Literal["at_once", "poisson"] = Field(
        "at_once", description="at_once: every run is submitted when the workload is ready; poisson: one "
        "by one, at exponential intervals."
    )
    mean_interval: FixedPosHours | None = Field(None, description="poisson only: mean time between submissions.")

    @model_validator(mode="after")
    def _interval(self):
        if (self.kind == "poisson") != (self.mean_interval is not None):
            raise ValueError("mean_interval goes with kind: poisson, and poisson needs it")
        return self




class Workload(Strict):
    name: Name = Field(description="Workload name, referred to by `after`.")
    description: str = Field("", description="Free text.")
    runs: RunCount = Field(1, description="Number of runs in the group.")
    params: PosCount | None = Field(None, description="Model parameters, e.g. 110M, 7B.")
    tokens: PosCount | None = Field(None, description="Training tokens per run, e.g. 2T.")
    method: Literal["full", "full_recompute", "lora"] = Field(
        "full", description="Sets the default FLOP per parameter-token: full 6, full_recompute 8, lora 4."
    )
    flop_per_param_token: PosFactor | None = Field(None, description="Overrides the method's k.")
    flop_per_run: Flop | None = Field(None, description="Training FLOP per run, instead of params x tokens.")
    gpu_hours_per_run: PosHours | None = Field(
        None, description="Accelerator-hours per run, measured; instead of FLOP."
    )
    hours_per_run: PosHours | None = Field(None, description="Wall time per run on `accelerators`; instead of FLOP.")
    accelerators: FixedPosInt = Field(description="Accelerators each run needs at once (gang).")
    pools: list[str] | None = Field(None, min_length=1,
                                    description="Pools it may use, in order of preference; default all.")
    mfu: FractionPos | None = Field(
        None, description="Model FLOP utilisation: achieved / peak. Needed with params/tokens or flop_per_run."
    )
    scaling: Scaling = Field(
        default_factory=lambda: ConstantScaling(kind="constant"), description="Efficiency for the run's size."
    )
    after: list[str] = Field(default_factory=list, description="Workloads that must finish first.")
    priority: int = Field(0, description="Higher runs first under the priority scheduler.")
    max_concurrent: FixedPosInt | None = Field(None, description="Most runs of this workload at once.")
    earliest_start: Date | None = Field(None, description="No run starts before this date.")
    divergence: Divergence | None = Field(None, description="Runs that go wrong partway.")
    done_at_start: num(units.parse_fraction, "fraction", lo=0, hi=1, hi_strict=True, uncertain=False) | None = Field(
        None, description="Share of its first run's work already done when the simulation starts (a re-forecast's "
        "running run); a rerun of it after a divergence starts from nothing.")
    on_node_loss: Literal["move", "wait", "best"] = Field(
        "move", description="When a failed node has no spare and its pool has no free node: move (queue "
        "again, any pool it may use), wait (hold the rest and wait for a node), or best (move when a pool has "
        "room for it now, else wait)."
    )
    loss_spike: LossSpike | None = Field(None, description="Loss spikes that roll a run back to an earlier "
                                         "checkpoint.")
    stragglers: Stragglers | None = Field(None, description="Runs slowed by stragglers (ByteDance, OSDI 2025: "
                                          "42.5% of jobs straggle).")
    early_stop: EarlyStop | None = Field(None, description="Sweep runs stopped early on purpose.")
    checkpoint: Checkpoint | None = Field(None, description="Overrides reliability.checkpoint.")
    power_factor: FractionPos | None = Field(None, description="Share of TDP its runs draw (overrides the pool's "
                                             "power_factor, the accelerator's power_w and carbon.power_factor).")
    run_length: RunLength = Field(
        default_factory=RunLength, description="How one run's length varies around the workload's size."
    )
    arrivals: Arrivals = Field(default_factory=Arrivals, description="When the runs are submitted.")

    @property
    def k(self) -> float:
        return self.flop_per_param_token if self.flop_per_param_token is not None else METHOD_K[self.method]

    @model_validator(mode="after")
    def _size(self):
        given = [
            k for k in ("tokens", "flop_per_run", "gpu_hours_per_run", "hours_per_run") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(
                "give the size of a run as exactly one of tokens (with params), flop_per_run, "
                f"gpu_hours_per_run or hours_per_run; found {found}"
            )
        if given == ["tokens"] and self.params is None:
            raise ValueError("tokens needs params (model parameters) to give the FLOP of a run")
        if self.params is not None and given != ["tokens"]:
            raise ValueError(f"params goes with tokens; this workload gives {given[0]} instead")
        if given[0] in ("tokens", "flop_per_run") and self.mfu is None:
            raise ValueError("mfu is needed to turn FLOP into time (e.g. mfu: 0.4)")
        return self


# --- reliability, carbon, simulation -----------------------------------------------------------
class Planned(Strict):
    rate_per_h: RunRate = Field(description="Planned interruptions (maintenance, upgrades, configuration "
                                "changes) per run-hour; a checkpoint is taken first, so no work is lost.")
    downtime: Hours = Field(0.0, description="Time a planned interruption holds the run (accelerators held), "
                            "before its restart.")


class Lemons(Strict):
    fraction: Fraction01 = Field(description="Share of nodes that fail far more often than the rest.")
    multiplier: num(units.parse_plain, "factor", lo=1) = Field(description="Their failure rate as a multiple of "
                                                               "the base rate.")
    repair_cures: Fraction01 = Field(0.0, description="Chance that a repair makes a failed lemon a good node; "
                                     "else it comes back a lemon.")


class FailureDomains(Strict):
    nodes: FixedPosInt = Field(description="Nodes in one failure domain (a rack, a switch, a power feed).")
    rate_per_h: RunRate = Field(description="Failures of one domain per hour: all its nodes are lost together "
                                "(on top of the nodes' own failures). A run on n nodes spans ceil(n / nodes) "
                                "domains (packed; placement is not modelled).")


class Reliability(Strict):
    model: Literal[tuple(FAILURE_MODELS)] = Field(  # the models of sim/policies.py
        "exponential", description="Failure model: exponential times between failures, or none."
    )
    failure_rate_per_gpu_h: Rate | None = Field(
        None, description="Hardware failures per accelerator-hour (a run on n fails n times as often)."
    )
    mtbf_per_gpu: PosHours | None = Field(None, description="Mean time between failures of one accelerator.")
    job_failure_rate_per_h: RunRate | None = Field(
        None, description="Job-level failures per run-hour, whatever the run's size (software, data loader, "
        "NCCL hangs, user error): small runs fail far more often than hardware explains (Kokolis et al. 2025)."
    )
    detect: Hours = Field(0.0, description="Time from a failure to noticing it: the run holds its accelerators "
                          "and makes no progress.")
    restart: Hours = Field(0.0, description="Time to restart after a failure or preemption, accelerators held; "
                           "failures can strike during it.")
    restart_per_node: Hours = Field(0.0, description="Added to restart for each node of the run.")
    restart_per_doubling: Hours = Field(
        0.0, description="Added to restart for each doubling of the run's nodes (x log2 nodes).")
    repair: Hours = Field(0.0, description="Time a failed node is out of its pool (median, per repair).")
    repair_sigma: num(units.parse_plain, "log-space sd", lo=0, uncertain=False) = Field(
        0.0, description="Spread of one repair's duration (lognormal around `repair`).")
    repair_crews: FixedInt0 = Field(0, description="Repairs a pool can run at once (0: no limit); the rest "
                                    "wait their turn.")
    unrecoverable_fraction: Fraction01 = Field(
        0.0, description="Share of hardware failures that also spoil the last checkpoint: the run rolls back "
        "one checkpoint further.")
    lemons: Lemons | None = Field(None, description="A share of nodes (and spares) with a multiple of the base "
                                  "failure rate, for the whole replication unless a repair cures them; a run gets "
                                  "the lemons among the free nodes it takes.")
    planned: Planned | None = Field(None, description="Planned interruptions, counted apart from failures.")
    failure_domains: FailureDomains | None = Field(
        None, description="Correlated failures: domains of several nodes that fail together at their own rate.")
    checkpoint: Checkpoint = Field(default_factory=Checkpoint, description="Checkpoint policy.")

    @model_validator(mode="after")
    def _one_rate(self):
        if self.failure_rate_per_gpu_h is not None and self.mtbf_per_gpu is not None:
            raise ValueError("give failure_rate_per_gpu_h or mtbf_per_gpu, not both")
        return self


class Carbon(Strict):
    grid_gco2_per_kwh: Intensity = Field(
        default_factory=lambda: carbon_defaults()["grid_gco2_per_kwh"],
        description="Grid carbon intensity, gCO2 per kWh (default: world average, sim/data/carbon.yaml).",
    )
    pue: PUE = Field(
        default_factory=lambda: carbon_defaults()["pue"],
        description="Power usage effectiveness of the data centre (default in sim/data/carbon.yaml).",
    )
    power_factor: FractionPos = Field(
        default_factory=lambda: carbon_defaults()["power_factor"],
        description="Share of TDP drawn by a busy accelerator.",
    )
    idle_power_factor: Fraction01 = Field(
        default_factory=lambda: carbon_defaults()["idle_power_factor"],
        description="Share of TDP (and of the host's share) drawn by an idle owned or reserved accelerator.",
    )
    profile: str | None = Field(
        None, description="Grid carbon intensity that varies with the month and the hour: a shipped profile "
        "or a cloud region's id (listed by `sim grid`: e.g. us-pjm-2024, de-2024, us-east-1) or a CSV file "
        "(columns month and/or hour, and "
        "gco2_per_kwh; a path relative to the scenario file). Energy is weighted by the intensity when it is "
        "used; replaces grid_gco2_per_kwh.")
    host_power: Literal["none", "catalog"] = Field(
        "none", description="Count the hosts' power (CPUs, memory, network): `catalog` takes each accelerator's "
        "host_w (sim/data/accelerators.yaml) unless a pool gives host_w_per_node; `none` counts the accelerators "
        "only (pools' host_w_per_node still count).")

    @model_validator(mode="after")
    def _one_grid(self):
        if self.profile is not None and "grid_gco2_per_kwh" in self.model_fields_set:
            raise ValueError("give grid_gco2_per_kwh or profile, not both")
        return self


class Simulation(Strict):
    replications: FixedPosInt = Field(1000, description="Monte Carlo replications for `sim run`.")
    seed: num(units.parse_count, "integer", lo=0, integer=True, uncertain=False) = Field(
        0, description="Root seed of every random stream."
    )
    sampling: Literal["random", "lhs", "sobol"] = Field("random", description="How uncertain inputs are drawn.")
    scheduler: Literal[tuple(SCHEDULERS)] = Field(  # the policies of sim/policies.py
        "fifo_backfill", description="Queue policy."
    )
    horizon: FixedPosHours = Field(438000.0, description="Give up on a replication after this long (default 50 y).")
    priors: Literal["on", "off"] = Field(
        "on", description="Keys left out (or written `prior`) take the built-in priors of sim/data/priors.yaml "
        "(MFU, failure rates, detection and restart times, checkpoint writes, loss spikes); `off` leaves them out "
        "(no failures unless given), as `--no-priors` does.")
    priors_file: str | None = Field(
        None, description="A priors file of your own (the format of sim/data/priors.yaml), tried before the "
        "built-in one; a path relative to the scenario file.")

    runs: str = Field(
        "auto", exclude=True, description="Per-run records kept in runs.parquet: `all`, `none`, `sample:N` (those of "
        "the first N replications) or `auto` (all, unless replications x runs pass 5,000,000 rows: then a sample, "
        "and the run says so); `--runs` overrides it. Not part of the scenario's hash: it changes which records "
        "are written, not the results.")

    @field_validator("priors", mode="before")
    @classmethod
    def _on_off(cls, v: Any):
        return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v

    @field_validator("runs", mode="before")
    @classmethod
    def _runs_kept(cls, v: Any):
        return runs_kept(v)


def runs_kept(v: Any) -> str:
    """`all`, `none`, `auto` or `sample:N` (N >= 1), normalised; ValueError otherwise."""
    text = str(v).strip().lower().replace(" ", "")
    kind, _, n = text.partition(":")
    if text in ("all", "none", "auto") or (kind == "sample" and n.isdigit() and int(n) >= 1):
        return text if kind != "sample" else f"sample:{int(n)}"
    raise ValueError(f"must be all, none, auto or sample:N (the runs of the first N replications, N >= 1), got {v!r}")


class Correlation(Strict):
    between: list[str] = Field(min_length=2, max_length=2, description="Two key paths of uncertain inputs.")
    rank: Rho = Field(description="Spearman rank correlation between them, -1..1.")


class ActualsSpec(Strict):
    """How a running project's actuals are read (docs/actuals.md)."""

    map: dict[str, str] = Field(
        default_factory=dict, description="Slurm job names to workloads, for actuals read from `sacct` output: "
        "fnmatch-style patterns (`*` any text, `?` one character, `[abc]` one of these; case matters) to workload "
        "names, tried in order; the first pattern that matches a JobName gives its workload. A JobName that no "
        "pattern matches but that equals a workload's name maps to it."
    )


class Scenario(Strict):
    project: Project = Field(description="Name, dates, budget.")
    accelerators: dict[Name, AcceleratorSpec] = Field(
        default_factory=dict, description="Additions to and overrides of the built-in catalog, by id."
    )
    pools: list[Pool] = Field(min_length=1, description="Capacity the project can use.")
    workloads: list[Workload] = Field(min_length=1, description="Groups of runs.")
    reliability: Reliability = Field(default_factory=Reliability, description="Failures and checkpoints.")
    carbon: Carbon = Field(default_factory=Carbon, description="Energy and emissions.")
    simulation: Simulation = Field(default_factory=Simulation, description="Monte Carlo settings.")
    correlations: list[Correlation] = Field(default_factory=list, description="Rank correlations of inputs.")
    actuals: ActualsSpec = Field(
        default_factory=ActualsSpec, description="How actuals (what a running project has done) are read."
    )
    variants: dict[Name, dict[str, Any]] = Field(
        default_factory=dict, description="Named overrides of this scenario, for `sim compare`."
    )

    def pool(self, name: str) -> Pool:
        return next(p for p in self.pools if p.name == name)


# --- walking a scenario's numbers --------------------------------------------------------------
def map_dists(obj: Any, fn, path: tuple = ()) -> Any:
    """Return a copy of `obj` (a model, list or dict) with every Dist replaced by fn(dist, path).
    Unchanged sub-objects are shared, not copied. `variants` (raw overrides) are left alone."""
    if isinstance(obj, Dist):
        return fn(obj, path)
    if isinstance(obj, BaseModel):
        updates = {}
        for name in type(obj).model_fields:
            if name == "variants":
                continue
            v = getattr(obj, name)
            nv = map_dists(v, fn, (*path, name))
            if nv is not v:
                updates[name] = nv
        return obj.model_copy(update=updates) if updates else obj
    if isinstance(obj, list):
        new = [map_dists(v, fn, (*path, i)) for i, v in enumerate(obj)]
        return new if any(a is not b for a, b in zip(new, obj, strict=True)) else obj
    if isinstance(obj, dict):
        new = {k: map_dists(v, fn, (*path, k)) for k, v in obj.items()}
        return new if any(new[k] is not obj[k] for k in obj) else obj
    return obj


def uncertain_inputs(scn: Scenario) -> dict[tuple, Dist]:
    """Every distribution in the scenario, by its path."""
    found: dict[tuple, Dist] = {}

    def keep(d: Dist, path: tuple) -> Dist:
        found[path] = d
        return d

    map_dists(scn, keep)
    return found


def nominal_scenario(scn: Scenario) -> Scenario:
    """The scenario with every distribution at its median (integers rounded)."""

    def med(d: Dist, _path: tuple):
        m = d.median()
        return int(round(m)) if d.bounds.integer else m

    return map_dists(scn, med)
