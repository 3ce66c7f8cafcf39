"""The built-in catalog: complete, sourced, dated, self-consistent; and `sim catalog`."""

import json
from datetime import date

import pytest

from sim.catalog import TIERS, builtin

REQUIRED = ["v100", "a100-40gb", "a100-80gb", "h100", "h200", "b200",
            "tpu-v2", "tpu-v3", "tpu-v4", "tpu-v5e", "tpu-v5p"]


def test_required_accelerators_present_with_sources():
    cat = builtin()
    for acc_id in REQUIRED:
        a = cat.accelerators[acc_id]
        assert a.peak_flop_per_s > 1e12 and a.tdp_w > 0 and a.memory_gb > 0
        assert len(a.source) > 20 and isinstance(a.date, date)


def test_dense_peaks_not_sparse_headlines():
    """Dense BF16/FP16 peaks (vendors' headline figures often double them with sparsity)."""
    cat = builtin().accelerators
    assert cat["h100"].peak_flop_per_s == pytest.approx(989e12, rel=0.01)
    assert cat["a100-80gb"].peak_flop_per_s == pytest.approx(312e12, rel=0.01)
    assert cat["v100"].peak_flop_per_s == pytest.approx(125e12, rel=0.01)
    assert cat["tpu-v3"].peak_flop_per_s == pytest.approx(123e12, rel=0.01)
    assert cat["b200"].peak_flop_per_s < 2.5e15  # 4.5 PFLOP/s is the sparse figure


def test_every_price_is_sourced_dated_and_known():
    cat = builtin()
    assert cat.prices
    for p in cat.prices:
        assert p.accelerator in cat.accelerators, p
        assert p.tier in TIERS, p
        assert 0 < p.usd_per_gpu_h < 100, p
        assert isinstance(p.date, date) and len(p.source) > 20, p
    for acc_id in REQUIRED:
        assert any(p.accelerator == acc_id and p.tier == "on_demand" for p in cat.prices), acc_id


def test_spot_and_reserved_cheaper_than_on_demand_same_provider_and_date():
    cat = builtin()
    od = {(p.accelerator, p.provider, p.date): p.usd_per_gpu_h for p in cat.prices if p.tier == "on_demand"}
    for p in cat.prices:
        if p.tier != "on_demand" and (p.accelerator, p.provider, p.date) in od:
            assert p.usd_per_gpu_h < od[(p.accelerator, p.provider, p.date)], p


def test_price_in_force_picks_latest_entry_before_date():
    cat = builtin()
    rows = sorted((p for p in cat.prices if p.accelerator == "h100" and p.provider == "aws"
                   and p.tier == "on_demand"), key=lambda p: p.date)
    assert len(rows) >= 2, "price history for AWS H100 expected (2025 price cut)"
    first, second = rows[0], rows[1]
    assert cat.price("h100", "on_demand", "aws", second.date).usd_per_gpu_h == second.usd_per_gpu_h
    day_before = date.fromordinal(second.date.toordinal() - 1)
    assert cat.price("h100", "on_demand", "aws", day_before).usd_per_gpu_h == first.usd_per_gpu_h
    assert cat.price("h100", "on_demand", "nobody", second.date) is None


def test_user_accelerator_and_override(write):
    from sim.loader import load

    text = """\
    project: {name: t, start: 2026-01-01}
    accelerators:
      my-chip: {peak_flop_per_s: 500T, tdp_w: 300, source: "vendor sheet"}
      h100: {peak_flop_per_s: 900T}
    pools:
      - {name: a, accelerator: my-chip, count: 8, price_usd_per_gpu_h: 1}
      - {name: b, accelerator: h100, count: 8, price_usd_per_gpu_h: 1}
    workloads:
      - {name: w, flop_per_run: 1e18, accelerators: 8, mfu: 0.5}
    """
    cat = load(write(text)).catalog
    assert cat.accelerators["my-chip"].peak_flop_per_s == 500e12
    assert cat.accelerators["h100"].peak_flop_per_s == 900e12
    assert cat.accelerators["h100"].tdp_w == builtin().accelerators["h100"].tdp_w


def test_sim_catalog_command(cli):
    code, out, _ = cli("catalog")
    assert code == 0
    for acc_id in REQUIRED:
        assert acc_id in out
    code, out, _ = cli("catalog", "tpu-v3", "--json")
    data = json.loads(out)
    assert [a["id"] for a in data["accelerators"]] == ["tpu-v3"]
    assert data["prices"] and all(p["accelerator"] == "tpu-v3" for p in data["prices"])
    code, _, err = cli("catalog", "nvidia-x")
    assert code == 2 and "unknown accelerator 'nvidia-x'" in err
