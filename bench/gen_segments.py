#!/usr/bin/python3
"""Planted-segment users for segmentd benchmarks and demos (stdlib only).

Every user belongs to one of --segments planted segments (or, for a
--noise-share of them, to none) and its events and texts carry the
segment's pattern in the four views of the segments space:
  behaviour  the segment prefers 3 of 12 event types (75% of its events);
  time       events and texts fall around a segment-specific peak hour
             (UTC, +-2 h, 85%), spread over 4 days from 2026-11-16;
  context    each user has a device, country and plan, each the segment's
             with probability 0.85 (properties of every event);
  text       short texts about the segment's topic (85%), 8 topic word lists.
--drop-view VIEW (repeatable) removes one view's signal: every user then
draws that view from the same mix (the average of the segments' mixes).
Noise users draw every view uniformly. The logic follows
tests/integration/harness_gen.c (same design, not bit-identical).

Writes OUT/events_NNNN.json ({"events": [...]}) and OUT/texts_NNNN.json
({"texts": [...]}), at most --batch items each (default 2000), ready for
POST /v1/events and /v1/texts, and OUT/labels.json ({"labels": {user_id:
"seg-3"}}, noise users left out), ready for POST
/v1/spaces/segments/evaluate.

usage: gen_segments.py [--users 5000] [--segments 8] [--seed 1]
                       [--drop-view text|behaviour|time|context]
                       [--events-per-user 12] [--texts-per-user 2]
                       [--noise-share 0.04] [--batch 2000] [--out DIR]
"""
import argparse
import json
import os
import random

N_TYPES = 12
EVENT_TYPES = ["page_view", "search", "add_to_cart", "checkout", "wishlist",
               "share", "review", "support_chat", "video_play", "download",
               "invite", "settings"]
TOPICS = [
    "refund invoice charge payment card fee receipt billing",
    "delivery package courier tracking parcel shipment address arrival",
    "password login email username profile verification reset security",
    "size colour material quality warranty model specs fabric",
    "return exchange damaged broken replace defect wrong label",
    "plan upgrade cancel renewal trial monthly annual tier",
    "crash update install notification screen bug version sync",
    "coupon discount voucher sale code offer deal points",
]
OPENERS = ["how do i", "i need help with", "question about", "please check my",
           "why is my", "can you explain", "problem with", "what about"]
DEVICES = ["ios", "android", "web", "desktop"]
COUNTRIES = ["US", "DE", "FR", "GB", "JP", "BR", "IN", "ES", "IT", "CA",
             "MX", "KR"]
PLANS = ["free", "plus", "pro", "team"]
SEG_MAX = 12
BASE_MS = 1794787200000  # 2026-11-16T00:00:00Z, a Monday
DAYS = 4
P_TYPE, P_HOUR, P_CTX, P_TOPIC = 0.75, 0.85, 0.85, 0.85
VIEWS = ("text", "behaviour", "time", "context")


def seg_types(s):
    """3 preferred event types; any two segments share at most one."""
    return [s % N_TYPES, (s + 4) % N_TYPES, (s + 9) % N_TYPES]


def seg_peak(s, n_seg):
    return (s * 24 // n_seg) % 24


def pick_seg(rng, seg, drop, n_seg):
    """The segment whose mix a draw follows: a random one when the view's
    signal is dropped, None (uniform) for a noise user."""
    if seg is None:
        return None
    return rng.randrange(n_seg) if drop else seg


def draw_type(rng, seg):
    if seg is not None and rng.random() < P_TYPE:
        return EVENT_TYPES[rng.choice(seg_types(seg))]
    return EVENT_TYPES[rng.randrange(N_TYPES)]


def draw_ts(rng, seg, n_seg):
    if seg is not None and rng.random() < P_HOUR:
        hour = (seg_peak(seg, n_seg) + rng.randint(-2, 2)) % 24
    else:
        hour = rng.randrange(24)
    sec = (rng.randrange(DAYS) * 24 + hour) * 3600 + rng.randrange(3600)
    return BASE_MS + sec * 1000 + rng.randrange(1000)


def draw_context(rng, seg, drop, n_seg):
    table = ((DEVICES, lambda s: s % 4), (COUNTRIES, lambda s: s % 12),
             (PLANS, lambda s: (s // 2) % 4))
    out = []
    for values, of in table:
        s = pick_seg(rng, seg, drop, n_seg)
        if s is not None and rng.random() < P_CTX:
            out.append(values[of(s)])
        else:
            out.append(rng.choice(values))
    return dict(zip(("device", "country", "plan"), out))


def draw_text(rng, seg):
    if seg is not None and rng.random() < P_TOPIC:
        topic = seg % len(TOPICS)
    else:
        topic = rng.randrange(len(TOPICS))
    words = TOPICS[topic].split()
    return " ".join([rng.choice(OPENERS)] + [rng.choice(words) for _ in range(4)])


def gen_user(args, i):
    """(user_id, segment or None, events, texts) of user i."""
    rng = random.Random(args.seed * 1000003 + i)
    uid = f"u{i:06d}"
    seg = None if rng.random() < args.noise_share else i % args.segments
    drop = set(args.drop_view)
    n = args.segments
    ctx = draw_context(rng, seg, "context" in drop, n)
    events = []
    for j in range(args.events_per_user):
        props = dict(ctx, promo=rng.random() < 0.3,
                     price=round(rng.uniform(1, 200), 2))
        events.append({
            "event_id": f"{uid}-e{j}", "user_id": uid,
            "type": draw_type(rng, pick_seg(rng, seg, "behaviour" in drop, n)),
            "ts": draw_ts(rng, pick_seg(rng, seg, "time" in drop, n), n),
            "properties": props})
    texts = [{"text_id": f"{uid}-t{j}", "user_id": uid,
              "text": draw_text(rng, pick_seg(rng, seg, "text" in drop, n)),
              "ts": draw_ts(rng, pick_seg(rng, seg, "time" in drop, n), n)}
             for j in range(args.texts_per_user)]
    return uid, seg, events, texts


class Batcher:
    """Writes OUT/<kind>_NNNN.json files of at most `size` items."""

    def __init__(self, out, kind, size):
        self.out, self.kind, self.size = out, kind, size
        self.items, self.files = [], 0

    def add(self, items):
        self.items.extend(items)
        while len(self.items) >= self.size:
            self.flush(self.size)

    def flush(self, n=None):
        n = len(self.items) if n is None else n
        if n == 0:
            return
        path = os.path.join(self.out, f"{self.kind}_{self.files:04d}.json")
        with open(path, "w") as f:
            json.dump({self.kind: self.items[:n]}, f, separators=(",", ":"))
        self.items = self.items[n:]
        self.files += 1


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=5000)
    p.add_argument("--segments", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--drop-view", action="append", default=[], choices=VIEWS)
    p.add_argument("--events-per-user", type=int, default=12)
    p.add_argument("--texts-per-user", type=int, default=2)
    p.add_argument("--noise-share", type=float, default=0.04)
    p.add_argument("--batch", type=int, default=2000)
    p.add_argument("--out", default="segments-data")
    a = p.parse_args()
    if not 2 <= a.segments <= SEG_MAX:
        p.error(f"--segments must be 2..{SEG_MAX}")
    if a.users < 1 or a.batch < 1 or not 0 <= a.noise_share <= 1:
        p.error("--users and --batch must be positive, --noise-share in [0, 1]")
    return a


def main():
    args = parse_args()
    os.makedirs(args.out, exist_ok=True)
    ev = Batcher(args.out, "events", args.batch)
    tx = Batcher(args.out, "texts", args.batch)
    labels = {}
    for i in range(args.users):
        uid, seg, events, texts = gen_user(args, i)
        ev.add(events)
        tx.add(texts)
        if seg is not None:
            labels[uid] = f"seg-{seg}"
    ev.flush()
    tx.flush()
    with open(os.path.join(args.out, "labels.json"), "w") as f:
        json.dump({"labels": labels}, f, separators=(",", ":"))
    print(f"{args.out}: {ev.files} event and {tx.files} text batch files, "
          f"{len(labels)} labelled users of {args.users}")


if __name__ == "__main__":
    main()
