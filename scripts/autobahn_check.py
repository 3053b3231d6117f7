"""Reads an Autobahn|Testsuite report (index.json) and fails, naming them, on the cases whose
behaviour is not OK, NON-STRICT or INFORMATIONAL, and when an expected agent is missing or ran
another number of cases than expected (a suite that stopped early, or a spec that lost cases).
Prints a summary table per agent.

    python3 autobahn_check.py index.json AGENT=CASES [AGENT=CASES ...]
"""
import collections
import json
import sys

ACCEPTED = {"OK", "NON-STRICT", "INFORMATIONAL"}


def case_key(case):
    return [int(part) for part in case.split(".")]


def main(path, expected):
    with open(path) as f:
        index = json.load(f)
    if not index:
        sys.exit("no agent in the report: did the suite reach the servers?")
    failed = []
    for agent, count in sorted(expected.items()):
        if agent not in index:
            failed.append("%s: not in the report (agents: %s)" % (agent, ", ".join(sorted(index))))
        elif len(index[agent]) != count:
            failed.append("%s: %d cases, expected %d" % (agent, len(index[agent]), count))
    for agent in sorted(set(index) - set(expected)):
        failed.append("%s: an agent nobody expected" % agent)
    print("| agent | cases | OK | NON-STRICT | INFORMATIONAL | other |")
    print("|---|---|---|---|---|---|")
    for agent in sorted(index):
        cases = index[agent]
        counts = collections.Counter(result["behavior"] for result in cases.values())
        other = sum(n for behavior, n in counts.items() if behavior not in ACCEPTED)
        print("| %s | %d | %d | %d | %d | %d |" % (agent, len(cases), counts["OK"],
              counts["NON-STRICT"], counts["INFORMATIONAL"], other))
        for case in sorted(cases, key=case_key):
            result = cases[case]
            if result["behavior"] not in ACCEPTED:
                failed.append("%s %s: %s (close: %s)" % (agent, case, result["behavior"],
                              result.get("behaviorClose")))
    if failed:
        print("\nfailed cases:")
        for line in failed:
            print("  " + line)
        sys.exit(1)
    print("\nevery case OK, NON-STRICT or INFORMATIONAL")


def expectations(args):
    expected = {}
    for arg in args:
        agent, _, count = arg.partition("=")
        if not count.isdigit():
            sys.exit("expected AGENT=CASES, got %r" % arg)
        expected[agent] = int(count)
    if not expected:
        sys.exit("name every expected agent and its number of cases (AGENT=CASES)")
    return expected


if __name__ == "__main__":
    main(sys.argv[1], expectations(sys.argv[2:]))
