#!/usr/bin/python3
"""Writes ingest batches for the foundation benchmark (stdlib only).

usage: gen_batches.py OUTDIR N_ITEMS BATCH_SIZE USERS
Writes texts_*.json (BANKING77 texts when ../shared/data is present, else
synthetic sentences), events_*.json, and users.txt (one user id per line).
"""
import csv
import json
import os
import random
import sys


def texts_source(n):
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "shared", "data", "banking77", "train.csv")
    if os.path.exists(path):
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r["text"] for r in csv.DictReader(f)]
    else:
        words = "card refund payment transfer account balance exchange rate".split()
        rows = [" ".join(random.choice(words) for _ in range(8)) for _ in range(2000)]
    return [rows[i % len(rows)] for i in range(n)]


def main():
    out, n, bs, users = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    random.seed(7)
    os.makedirs(out, exist_ok=True)
    texts = texts_source(n)
    types = ["view", "search", "add_to_cart", "checkout", "refund", "login", "share"]
    devices = ["ios", "android", "web"]
    for b in range(0, n, bs):
        items = [{"text_id": f"t{i}", "user_id": f"u{i % users}", "text": texts[i]}
                 for i in range(b, min(n, b + bs))]
        with open(os.path.join(out, f"texts_{b // bs:04d}.json"), "w") as f:
            json.dump({"texts": items}, f)
        evs = [{"event_id": f"e{i}", "user_id": f"u{i % users}", "type": random.choice(types),
                "ts": 1795773600000 + i * 1000,
                "properties": {"device": random.choice(devices)}}
               for i in range(b, min(n, b + bs))]
        with open(os.path.join(out, f"events_{b // bs:04d}.json"), "w") as f:
            json.dump({"events": evs}, f)
    with open(os.path.join(out, "users.txt"), "w") as f:
        f.write("\n".join(f"u{i}" for i in range(users)) + "\n")


if __name__ == "__main__":
    main()
