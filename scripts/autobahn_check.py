"""Reads an Autobahn|Testsuite report (index.json) and fails, naming them, on the cases whose
behaviour is not OK, NON-STRICT or INFORMATIONAL. Prints a summary table per agent."""
import collections
import json
import sys

ACCEPTED = {"OK", "NON-STRICT", "INFORMATIONAL"}


def case_key(case):
    return [int(part) for part in case.split(".")]


def main(path):
    with open(path) as f:
        index = json.load(f)
    if not index:
        sys.exit("no agent in the report: did the suite reach the servers?")
    failed = []
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


if __name__ == "__main__":
    main(sys.argv[1])
