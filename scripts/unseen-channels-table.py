"""The table of scripts/unseen-channels.sh: per channel and held-out package, the real files the
default threshold flags (file verdicts of the `deepscreen screen` reports DIR/<channel>.jsonl,
"clean" first; error and no-signal rows left out) and the mean file score.

    python3 scripts/unseen-channels-table.py DIR
"""

import collections
import json
import os
import sys

U = sys.argv[1]
reports = sorted(f[: -len(".jsonl")] for f in os.listdir(U) if f.endswith(".jsonl"))
chans = sorted(reports, key=lambda c: c != "clean")
pk = ["asterisk-core-sounds-ru-wav", "fillets-ng-data-nl", "flight-of-the-amazon-queen", "klettres-data"]
print("| channel | " + " | ".join(pk) + " | pooled | mean score |")
print("|---" * (len(pk) + 3) + "|")
for c in chans:
    f = os.path.join(U, c + ".jsonl")
    n = collections.Counter(); fl = collections.Counter(); ss = []
    for line in open(f):
        r = json.loads(line)
        if r.get("error") or r.get("verdict") not in ("synthetic", "bona-fide"):
            continue
        p = next((p for p in pk if "/" + p + "/" in r["path"]), None)
        n[p] += 1; fl[p] += r["verdict"] == "synthetic"; ss.append(r["score"])
    cells = [f"{100*fl[p]/n[p]:.1f} % ({fl[p]}/{n[p]})" for p in pk]
    tot, tf = sum(n.values()), sum(fl.values())
    print(f"| {c} | " + " | ".join(cells) + f" | {100*tf/tot:.1f} % ({tf}/{tot}) | {sum(ss)/len(ss):.3f} |")
