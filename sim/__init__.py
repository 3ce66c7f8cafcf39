"""trainsim: forecast what a deep-learning training project will cost and when it will finish.

The Python API (sim.api) is re-exported here: sim.load, sim.estimate, sim.run, sim.resume,
sim.compare, sim.sweep, sim.sensitivity, sim.analyse, sim.backtest, sim.reforecast and sim.calibrate.
(The modules behind them are named apart from these functions: sim.deterministic, sim.comparison,
sim.sensitivity_analysis, sim.backtesting, sim.reforecasting, sim.calibration.)
"""

__version__ = "0.1.0"

import os  # noqa: E402

# Arrow's C++ default allocator, read when pyarrow is first used: the C library's rather than mimalloc,
# whose freed buffers go back to the system and come back as page faults (see
# sim.runner.system_allocator, which covers the allocations made from Python); set it to override.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

from sim import api  # noqa: E402
from sim.api import (  # noqa: E402
    DEFAULT,
    Comparison,
    Result,
    RunError,
    RunInterrupted,
    ScenarioError,
    SensitivityResult,
    SettingsError,
    SweepResult,
    analyse,
    backtest,
    calibrate,
    compare,
    estimate,
    load,
    reforecast,
    resume,
    run,
    sensitivity,
    sweep,
)

__all__ = ["DEFAULT", "Comparison", "Result", "RunError", "RunInterrupted", "ScenarioError", "SensitivityResult",
           "SettingsError", "SweepResult", "analyse", "api", "backtest", "calibrate", "compare", "estimate", "load",
           "reforecast", "resume", "run", "sensitivity", "sweep"]
