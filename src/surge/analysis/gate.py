"""The CI gate decision: a comparison against a baseline plus the run's thresholds (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from surge.analysis.compare import pct_change

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass(frozen=True)
class GateResult:
    """``status`` is pass, warn (inconclusive comparisons only) or fail, with the reasons."""

    status: str
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    regressed: bool = False
    thresholds_failed: bool = False


def decide(comparison: Any | None, thresholds: list[dict[str, Any]]) -> GateResult:
    """Fail on a REGRESSED metric, a failed threshold, or a run with none of the baseline's
    requests; warn on INCONCLUSIVE and on requests missing from the run; else pass.

    ``comparison`` is an :class:`surge.analysis.compare.Comparison` (or None when
    there is no baseline); ``thresholds`` are the summary's threshold results.
    """
    failures, warnings = [], []
    regressed = False
    if comparison is not None:
        gone = comparison.only_in_a  # in the baseline, absent from this run
        if gone and not comparison.rows:
            # Nothing compared is not a pass: a run that sent none of the baseline's
            # requests (or none at all) passed the gate before.
            regressed = True
            failures.append(f"nothing to compare: this run has none of the baseline's requests "
                            f"({', '.join(gone[:5])}{', ...' if len(gone) > 5 else ''})")
        elif gone:
            warnings.append(f"not in this run, so not compared: {', '.join(gone[:5])}"
                            f"{', ...' if len(gone) > 5 else ''}")
        for row in comparison.rows:
            if row.verdict == "REGRESSED":
                regressed = True
                failures.append(f"{row.name} {row.metric} regressed: {_ratio(row)}")
            elif row.verdict == "INCONCLUSIVE":
                warnings.append(f"{row.name} {row.metric} inconclusive: {row.reason}")
    failed_th = [t for t in thresholds if not t.get("passed")]
    for t in failed_th:
        failures.append(f"threshold {t['threshold']} failed: observed {t.get('observed_text', '?')}")
    status = FAIL if failures else WARN if warnings else PASS
    return GateResult(status, failures, warnings, regressed, bool(failed_th))


def _ratio(row: Any) -> str:
    if row.ratio is None:
        return "no data"
    ci = (f" (CI {pct_change(row.ci_low)}..{pct_change(row.ci_high)})"
          if row.ci_low is not None and row.ci_high is not None else "")
    return f"{pct_change(row.ratio)}{ci}"  # the change in %, as the compare table shows it
