"""Compares one model on a folder of images; writes <output>/<model>.json and prints it."""
import argparse
import json
import os
import socket

import fbmetrics  # from the venv the setup file built on this node

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("-i", "--input", required=True)
parser.add_argument("-o", "--output", required=True)
args = parser.parse_args()

images = sorted(f for f in os.listdir(args.input) if f.endswith(".jpg"))
scores = [fbmetrics.score(args.model, open(os.path.join(args.input, f), "rb").read()) for f in images]
result = {
    "model": args.model,
    "images": len(images),
    "score": round(sum(scores) / len(scores), 4),
    "input": args.input,
    "node": os.environ.get("SLURMD_NODENAME", socket.gethostname()),
    "python": os.environ.get("VIRTUAL_ENV", ""),
}
os.makedirs(args.output, exist_ok=True)
with open(os.path.join(args.output, args.model + ".json"), "w") as f:
    json.dump(result, f)
print(json.dumps(result), flush=True)
