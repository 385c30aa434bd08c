#!/usr/bin/env python3
"""Summary of a ctest run from its JUnit file (ctest --output-junit): passed / failed / skipped
counts, each failed test, each skipped test with its reason (the test's "SKIP: ..." line, else
ctest's reason), and the tests the build left out (tests_left_out.txt, written at configure time).

usage: ctest_summary.py RESULTS.xml [LEFT_OUT.txt]
"""
import sys
import xml.etree.ElementTree as ET


def skip_reason(case):
    out = case.findtext("system-out") or ""
    for line in out.splitlines():
        if line.startswith("SKIP:"):
            return line[len("SKIP:"):].strip()
    s = case.find("skipped")
    return s.get("message", "") if s is not None else ""


def main(results, left_out=None):
    cases = list(ET.parse(results).getroot().iter("testcase"))
    passed = [c for c in cases if c.get("status") == "run"]
    skipped = [c for c in cases if c.get("status") == "notrun"]
    failed = [c for c in cases if c.get("status") not in ("run", "notrun")]
    print(f"tests: {len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped (of {len(cases)})")
    for c in failed:
        print(f"  FAILED  {c.get('name')}")
    for c in skipped:
        print(f"  SKIPPED {c.get('name')}: {skip_reason(c)}")
    if left_out:
        lines = [l for l in open(left_out).read().splitlines() if l.strip()]
        if lines:
            print(f"left out of the build ({len(lines)}):")
            for l in lines:
                print(f"  {l}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(*sys.argv[1:])
