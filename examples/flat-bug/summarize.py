"""The finalizer: reads the staged-back <model>.json files under the given folders and writes a summary."""
import json
import os
import sys

summary, roots = sys.argv[1], sys.argv[2:]
results = []
for root in roots:
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".json"):
                results.append(json.load(open(os.path.join(folder, name))))
results.sort(key=lambda r: -r["score"])
with open(summary + ".tmp", "w") as f:
    json.dump({"models": len(results), "best": results[0]["model"] if results else None, "ranking": [r["model"] for r in results]}, f, indent=2)
os.replace(summary + ".tmp", summary)
print("summary of %d models, best: %s" % (len(results), results[0]["model"] if results else "none"))
