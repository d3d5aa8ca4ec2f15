"""Bounds on what a run may ask for: beyond them an input is a typo, not a test plan.

Without them a rate of 1e12 req/s spent ~45 s building a schedule and then sent
nothing, 100 million VUs were killed by the kernel for memory, and a duration of
1e100 s overflowed inside a worker; each exited 0. A usage error says so at once.
"""

from __future__ import annotations

MAX_DURATION_S = 31 * 86_400.0  # s: a month; longer soaks are run as several runs
MAX_RATE = 10_000_000.0  # req/s (or iterations/s) per run: ~100x what one machine can send
MAX_VUS = 1_000_000  # VUs or connections per run: each costs memory and a socket
