"""CPU time fail2ban spends on one log line, per filter: fail2ban-regex's own Fail2banRegex
(the filter read as fail2ban-regex reads it, usedns = no, each line through processLine), in
one process, each line repeated until it has cost `budget` CPU seconds or `max` repetitions.
Input (stdin, JSON): {"config": dir, "budget": s, "max": n, "jobs": [{"filter": name, "lines": {label: text}}]}
Output (stdout, JSON): [{"filter": name, "label": label, "seconds": per line, "repetitions": n}]
Run with the interpreter of fail2ban-regex (the fail2ban package's python3)."""
import json
import sys
import time

from fail2ban.client.fail2banregex import Fail2banRegex, get_opt_parser

request = json.load(sys.stdin)
# Fail2banRegex prints what it reads: to stderr, the results alone to stdout.
out, sys.stdout = sys.stdout, sys.stderr
results = []
for job in request["jobs"]:
    opts, _ = get_opt_parser().parse_args(["-c", request["config"], "--usedns=no", "--raw", "-l", "error"])
    regex = Fail2banRegex(opts)
    if not regex.readRegex(job["filter"], "fail"):
        raise SystemExit("cannot read filter %s" % job["filter"])
    for label, line in job["lines"].items():
        regex.testRegex(line)
        count = 0
        start = time.process_time()
        while True:
            regex.testRegex(line)
            count += 1
            spent = time.process_time() - start
            if spent >= request["budget"] or count >= request["max"]:
                break
        results.append({"filter": job["filter"], "label": label, "seconds": spent / count, "repetitions": count})
json.dump(results, out)
