"""A long fuzz campaign of the command line: the strategies and checks of tests/test_fuzz_cli.py
(exit code 0 or 2, no traceback, a time bound per example, JSON that parses, nothing written
outside the example's temporary folder), run for --minutes with many more examples.

    PYTHONPATH=. python benchmarks/fuzz_campaign.py --minutes 30

Prints how many examples ran, how many ended with each exit code, and every failure found (its
argument list and what was wrong); exits 1 when there was one.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_fuzz_cli import command_lines, materialise, problems, route_logs, run_cli, snapshot  # noqa: E402


class Campaign:
    def __init__(self, minutes: float):
        self.deadline = time.monotonic() + minutes * 60
        self.codes: collections.Counter = collections.Counter()
        self.commands: collections.Counter = collections.Counter()
        self.failures: list[tuple[list[str], list[str]]] = []
        self.slowest = (0.0, [])

    def one(self, argv: list[str]) -> None:
        if time.monotonic() > self.deadline:
            return
        before = snapshot()
        with tempfile.TemporaryDirectory(prefix="trainsim-fuzz-") as tmp:
            r = run_cli(materialise(argv, Path(tmp)), Path(tmp))
        found = problems(r)
        if snapshot() != before:
            found.append("wrote outside its folder")
        self.codes[r.code] += 1
        self.commands[argv[0] if argv else "-"] += 1
        self.slowest = max(self.slowest, (r.seconds, r.argv))
        if found:
            self.failures.append((r.argv, found + [r.err[-500:]]))

    def run(self, batch: int = 100) -> None:
        @settings(max_examples=batch, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(argv=command_lines())
        def examples(argv):
            self.one(argv)

        while time.monotonic() < self.deadline:
            examples()

    def report(self) -> str:
        lines = [f"examples run: {sum(self.codes.values())}",
                 "by exit code: " + ", ".join(f"{c}: {n}" for c, n in sorted(self.codes.items())),
                 "by command: " + ", ".join(f"{c}: {n}" for c, n in sorted(self.commands.items())),
                 f"slowest: {self.slowest[0]:.1f} s ({' '.join(self.slowest[1])})",
                 f"failures found: {len(self.failures)}"]
        for argv, found in self.failures[:50]:
            lines.append(f"  sim {' '.join(argv)}: {'; '.join(found)}")
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="how long to run (default 30)")
    a = ap.parse_args(argv)
    route_logs()
    c = Campaign(a.minutes)
    c.run()
    print(c.report())
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
