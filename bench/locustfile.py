"""Locust users for bench/peers.py (run by it from bench/.venv-locust).

BENCH_PER_USER_RATE > 0 gives each user a constant throughput (req/s), so
`-u 50` users at 100 req/s each make a fixed 5,000 req/s; unset means no wait.
"""

import os

from locust import FastHttpUser, HttpUser, constant, constant_throughput, task

_RATE = float(os.environ.get("BENCH_PER_USER_RATE", "0") or 0)
_WAIT = constant_throughput(_RATE) if _RATE > 0 else constant(0)


class FastUser(FastHttpUser):
    wait_time = _WAIT

    @task
    def hello(self):
        self.client.get("/")


class SlowUser(HttpUser):
    wait_time = _WAIT

    @task
    def hello(self):
        self.client.get("/")
