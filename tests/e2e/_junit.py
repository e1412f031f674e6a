"""Reading JUnit XML the way CI does, to compare Tach's file with pytest's ``--junitxml``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

#: Elements that say what happened to a testcase (no element: it passed).
OUTCOME_TAGS = ("failure", "error", "skipped")


def testcases(path: Path) -> Counter[tuple[str, str, str]]:
    """(classname, name, outcome) of every testcase; outcome is the tags of its outcome
    elements (``skipped:pytest.xfail`` for an xfail) joined by ``+``, or ``passed``."""
    root = ET.parse(path).getroot()
    found: Counter[tuple[str, str, str]] = Counter()
    for case in root.iter("testcase"):
        outcome = "+".join(
            sorted(
                f"{child.tag}:{child.get('type')}" if child.get("type") else child.tag
                for child in case
                if child.tag in OUTCOME_TAGS
            )
        )
        found[(case.get("classname", ""), case.get("name", ""), outcome or "passed")] += 1
    return found


def compare(ours: Path, theirs: Path, ignore: set[tuple[str, str]] = frozenset()) -> dict:
    """How two JUnit files agree: testcases (classname, name) in both with the same outcome
    elements, and the lists of those that differ, are missing or extra."""
    a = {k: v for k, v in testcases(ours).items() if k[:2] not in ignore}
    b = {k: v for k, v in testcases(theirs).items() if k[:2] not in ignore}
    by_name_a: dict[tuple[str, str], Counter[str]] = {}
    by_name_b: dict[tuple[str, str], Counter[str]] = {}
    for (cls, name, outcome), n in a.items():
        by_name_a.setdefault((cls, name), Counter())[outcome] += n
    for (cls, name, outcome), n in b.items():
        by_name_b.setdefault((cls, name), Counter())[outcome] += n
    same = [k for k in by_name_b if by_name_a.get(k) == by_name_b[k]]
    different = {
        k: (dict(by_name_a[k]), dict(by_name_b[k]))
        for k in by_name_b
        if k in by_name_a and by_name_a[k] != by_name_b[k]
    }
    return {
        "theirs": len(by_name_b),
        "ours": len(by_name_a),
        "same": len(same),
        "different": different,
        "missing": sorted(k for k in by_name_b if k not in by_name_a),
        "extra": sorted(k for k in by_name_a if k not in by_name_b),
    }
