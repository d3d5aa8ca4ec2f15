"""When errors start, of which type, and on which requests."""

from __future__ import annotations

from collections import Counter

import numpy as np

from surge.analysis.findings.base import Finding, Timeline
from surge.metrics.stats import SecondStats

MIN_ERRORS = 5
MIN_RATE = 0.001  # 0.1 % of requests


def error_onset(tl: Timeline, series: list[SecondStats]) -> Finding | None:
    """The first second from which errors keep appearing, their types and the worst requests."""
    total_err, total_req = float(tl.errors.sum()), float(tl.requests.sum())
    if total_err < MIN_ERRORS or total_req == 0 or total_err / total_req < MIN_RATE:
        return None
    nz = np.flatnonzero(tl.errors > 0)
    # onset: the first erroring second followed by errors in at least 2 of the next 5 seconds,
    # so a single early blip does not date the onset
    onset = nz[0]
    for i in nz:
        if np.count_nonzero(tl.errors[i + 1:i + 6] > 0) >= 2 or tl.errors[i] >= MIN_ERRORS:
            onset = i
            break
    types: Counter = Counter()
    for d in tl.errors_by_type:
        types.update(d)
    names: Counter = Counter()
    for s in series:
        for (_sc, name, method, _status), st in s.requests.items():
            if st.error_count:
                names[f"{method} {name}"] += st.error_count
    t0, t1 = float(tl.t[onset]), float(tl.t[nz[-1]])
    rate = total_err / total_req
    before = tl.requests[:onset].sum()
    type_txt = ", ".join(f"{n} {k}" for k, n in types.most_common(4))
    worst = ", ".join(f"{k} ({n})" for k, n in names.most_common(3))
    sev = "critical" if rate >= 0.01 else "warning"
    when = "from the start" if onset == 0 or before == 0 else f"at {t0:.0f} s"
    return Finding(
        kind="errors", severity=sev,
        title=f"Errors {when}: {int(total_err)} of {int(total_req)} requests failed ({rate:.2%})",
        detail=(f"Mostly {types.most_common(1)[0][0]}. Most affected: {worst}. "
                + ("Errors that begin under load (not at the start) usually mean a limit was reached: "
                   "connection or worker pools, file descriptors, timeouts." if when != "from the start" else
                   "Errors from the first second usually mean a wrong URL, missing auth or a broken endpoint, "
                   "not load.")),
        evidence=(f"types: {type_txt}", f"first sustained errors at {t0:.0f} s, last at {t1:.0f} s",
                  f"{int(before)} requests succeeded before the onset"),
        t_range=(t0, t1), subject=names.most_common(1)[0][0] if names else None)
