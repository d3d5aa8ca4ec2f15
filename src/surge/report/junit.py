"""JUnit XML for the gate: one test case per threshold and per compared (name, metric)."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET


def gate_junit(cmp: Any | None, thresholds: list[dict[str, Any]], *, run: str) -> str:
    suite = ET.Element("testsuite", name=f"surge gate {run}")
    cases = failures = skipped = 0
    for t in thresholds:
        case = ET.SubElement(suite, "testcase", classname="surge.thresholds", name=t["threshold"])
        cases += 1
        if not t.get("passed"):
            failures += 1
            ET.SubElement(case, "failure", message=f"observed {t.get('observed_text', '?')}")
    if cmp is not None:
        for r in cmp.rows:
            case = ET.SubElement(suite, "testcase", classname=f"surge.compare.{r.metric}", name=r.name)
            cases += 1
            if r.verdict == "REGRESSED":
                failures += 1
                ratio = f"x{r.ratio:.3f}" if r.ratio is not None else "from zero"
                ET.SubElement(case, "failure", message=f"regressed {ratio}: {r.reason}")
            elif r.verdict == "INCONCLUSIVE":
                skipped += 1
                ET.SubElement(case, "skipped", message=f"inconclusive: {r.reason}")
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
