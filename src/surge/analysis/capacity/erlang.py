"""M/M/c queueing (Erlang C) and instance sizing.

Vocabulary: λ arrival rate (req/s), μ service rate of one server (req/s),
c servers, a = λ/μ offered load in Erlangs, ρ = a/c utilisation. The queue is
stable only when a < c.

Erlang C (probability that a request has to wait) is computed from the Erlang B
recursion B(0) = 1, B(k) = a·B(k−1) / (k + a·B(k−1)), then
C = c·B / (c − a·(1 − B)): no factorials or powers, so it stays exact for
thousands of servers and hundreds of Erlangs.

Sizing model (used by ``surge capacity --target-rate``): each instance of the
service is one server of an M/M/c queue whose service rate μ is the instance's
measured maximum throughput; requests arrive as a Poisson stream at the target
rate and are spread over the instances by one shared queue. A request's
response time is its unloaded latency (measured at the lowest load) plus the
M/M/c waiting time. This is an approximation: a real instance serves many
requests at once and a load balancer does not run one shared queue (per-instance
queues wait longer), so treat the answer as a lower bound on what you need.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from surge.api.errors import UsageError

MAX_INSTANCES = 100_000


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of M/M/c/c with ``c`` servers and ``a`` Erlangs offered."""
    if c < 0 or a < 0:
        raise ValueError("erlang_b needs c >= 0 and a >= 0")
    b = 1.0
    for k in range(1, int(c) + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c (``c`` servers, ``a`` = λ/μ Erlangs).

    1.0 when the queue is unstable (a >= c): every arrival waits, and waits forever.
    """
    if c <= 0 or a < 0:
        raise ValueError("erlang_c needs c >= 1 and a >= 0")
    if a == 0:
        return 0.0
    if a >= c:
        return 1.0
    b = erlang_b(c, a)
    return c * b / (c - a * (1.0 - b))


def service_level(c: int, a: float, mu: float, t: float) -> float:
    """P(wait <= t s) in M/M/c: 1 − C·exp(−(c − a)·μ·t). ``mu`` in 1/s."""
    if a >= c:
        return 0.0
    return 1.0 - erlang_c(c, a) * math.exp(-(c - a) * mu * t)


def mean_wait(c: int, a: float, mu: float) -> float:
    """Mean time in queue (s), the average speed of answer: C / ((c − a)·μ); inf when a >= c."""
    if a >= c:
        return math.inf
    return erlang_c(c, a) / ((c - a) * mu)


def utilisation(c: int, a: float) -> float:
    """ρ = a/c, the busy fraction of each server (> 1 means overloaded)."""
    return a / c


def response_within(c: int, a: float, mu: float, t: float) -> float:
    """P(wait + service <= t s) in M/M/c, service ~ Exp(μ).

    P(T > t) = e^{−μt}·[1 + C·(1 − e^{−μt(c−a−1)})/(c − a − 1)], whose limit at
    c − a − 1 = 0 is e^{−μt}·(1 + C·μt).
    """
    if a >= c:
        return 0.0
    if t <= 0:
        return 0.0
    cw = erlang_c(c, a)
    d = c - a - 1.0
    mt = mu * t
    frac = mt if abs(d) < 1e-9 else -math.expm1(-d * mt) / d
    return max(0.0, 1.0 - math.exp(-mt) * (1.0 + cw * frac))


@dataclass(frozen=True)
class Sizing:
    """How many instances a target rate needs, and what the queue looks like then.

    ``target_rate`` and ``per_instance`` in req/s; ``slo_s``, ``base_latency_s``,
    ``mean_wait_s`` in s; ``p_wait``, ``p_within_slo``, ``utilisation`` in 0..1.
    """

    instances: int
    target_rate: float
    per_instance: float
    offered_erlangs: float
    utilisation: float
    p_wait: float
    mean_wait_s: float
    p_within_slo: float
    slo_s: float
    percentile: float
    base_latency_s: float
    model: str = "M/M/c (Erlang C): one server per instance, rate = measured max throughput"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def size_instances(target_rate: float, per_instance: float, slo_s: float, percentile: float = 95.0,
                   base_latency_s: float = 0.0, max_wait_s: float | None = None) -> Sizing:
    """The fewest instances c such that P(base + wait <= slo) >= percentile/100
    (and mean wait <= ``max_wait_s`` when given).

    ``target_rate`` (req/s) is the peak to serve, ``per_instance`` (req/s) one
    instance's capacity μ, ``base_latency_s`` the unloaded latency that queueing
    adds to. Raises :class:`UsageError` when no number of instances can meet the SLO.
    """
    if not (target_rate > 0 and per_instance > 0):
        raise UsageError("--target-rate and the per-instance capacity must be > 0 req/s")
    if not 0 < percentile < 100:
        raise UsageError(f"invalid --slo-percentile {percentile}: must be between 0 and 100 (e.g. 95)")
    if slo_s <= 0:
        raise UsageError("--slo must be > 0 (e.g. 300ms)")
    budget = slo_s - base_latency_s
    if budget <= 0:
        raise UsageError(
            f"--slo {slo_s * 1000:g}ms is not above the unloaded latency ({base_latency_s * 1000:.4g} ms): "
            "no number of instances meets it; raise the SLO or make one request faster")
    a = target_rate / per_instance
    q = percentile / 100.0
    c = max(1, math.floor(a) + 1)
    while c <= MAX_INSTANCES:
        ok = service_level(c, a, per_instance, budget) >= q
        if ok and max_wait_s is not None:
            ok = mean_wait(c, a, per_instance) <= max_wait_s
        if ok:
            return Sizing(c, target_rate, per_instance, a, utilisation(c, a), erlang_c(c, a),
                          mean_wait(c, a, per_instance), service_level(c, a, per_instance, budget),
                          slo_s, percentile, base_latency_s)
        c += 1
    raise UsageError(f"more than {MAX_INSTANCES} instances would be needed: check --target-rate and the capacity")
