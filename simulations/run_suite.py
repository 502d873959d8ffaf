"""Run every scenario in this folder; write results/results.md and results/results.json.

.venv/bin/python simulations/run_suite.py            # simulate all scenarios
.venv/bin/python simulations/run_suite.py --tune 30  # also tune each (30 trials, 2 jobs)
"""

from __future__ import annotations

import sys
from pathlib import Path

from gemini.simulate.suite import main

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    raise SystemExit(main([str(here), *sys.argv[1:]]))
