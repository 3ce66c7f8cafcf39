"""trainsim: forecast what a deep-learning training project will cost and when it will finish.

The Python API (sim.api) is re-exported here: sim.load, sim.estimate, sim.run, sim.resume,
sim.compare, sim.sweep, sim.sensitivity and sim.analyse.

Three of those names are also modules of this package (sim.estimate, sim.compare,
sim.sensitivity). So that both `sim.estimate("file.yaml")` and `sim.estimate.estimate(loaded)`
work whatever was imported first, those modules are made callable: calling the module calls the
API function of the same name.
"""

import importlib as _importlib
import types as _types

__version__ = "0.1.0"

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
    load,
    resume,
    run,
    sweep,
)


def _callable_module(name: str) -> None:
    module = _importlib.import_module(f"{__name__}.{name}")
    function = getattr(api, name)

    class _CallableModule(_types.ModuleType):
        def __call__(self, *args, **kwargs):
            return function(*args, **kwargs)

    _CallableModule.__call__.__doc__ = function.__doc__
    module.__class__ = _CallableModule
    globals()[name] = module


for _name in ("estimate", "compare", "sensitivity"):
    _callable_module(_name)

__all__ = ["DEFAULT", "Comparison", "Result", "RunError", "RunInterrupted", "ScenarioError", "SensitivityResult",
           "SettingsError", "SweepResult", "analyse", "api", "compare", "estimate", "load", "resume", "run",
           "sensitivity", "sweep"]
