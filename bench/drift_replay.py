#!/usr/bin/python3
"""Offline replay of the emerging-cluster neighbourhood test, for trying
encoders and settings before changing segmentd.

The test as drift_emerging.c runs it: the latest M (500) recent points
against NB (2,000) baseline points; each recent point's K (20) nearest
neighbours by cosine among both; a point is new when the count of recent
ones has a binomial tail probability (p0 = (m-1)/(n+m-1)) under P (0.05);
connected components of new points (an edge: one among the other's K);
members with fewer than RIM x K neighbours in their own group dropped; a
group of at least MIN (30 by default here; segmentd's default is now 20,
with --twin: members with a baseline point nearer than every other member
of their group dropped too) members is a candidate.

The stream as bench/drift_banking.py builds it (BANKING77 train + test, 5
intents held back per seed, 3,000 warm-up texts of the others, baseline and
stationary intervals of 200 texts from the rest, then emerging intervals
with 25% held-back texts), but with numpy draws of its own: the seeds'
held-back intents match the bench's, the texts drawn do not.

The built-in encoder is approximated with scikit-learn: TF-IDF (sublinear,
L2) over character 3-5 grams within words and word 1-2 grams, then
  lsa      TruncatedSVD (256) fitted on the warm-up texts: segmentd's
  oracle   the same fitted on the warm-up and the held-back texts (what a
           vocabulary that knows the new intent would give)
  oov:B    lsa plus a random projection (256) of the features the fit never
           saw, weighted B
  raw      a random projection (256) of all features
  use      a pretrained sentence encoder's vectors (Universal Sentence
           Encoder lite, 512), as drift_banking.py --vectors use caches them
Figures are this approximation's, not segmentd's: use them to rank ideas.

usage: /usr/bin/python3 bench/drift_replay.py [--seeds 0,1,2,3,4,5]
       [--encoders lsa,oracle,oov:1] [--min-size 30] [--rim 0.3]
       [--stationary 10] [--emerging 5] [--twin] [--member-stats]
       [--group-sizes]
prints per seed and encoder: (first emerging interval with a candidate or
None, held-back share of the largest candidate then, false candidates over
the stationary checks); with --group-sizes instead: the sizes of all groups
in the stationary checks and the four largest groups (size, held-back
share) at emerging checks 1 and 2, whatever their size.
"""
import argparse
import collections
import csv
import os

import numpy as np
import scipy.sparse as sp
from scipy.stats import binom
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data", "banking77")
K, PV, NB, M, PER, SHARE, DIM = 20, 0.05, 2000, 500, 200, 0.25, 256


def load():
    rows = []
    for f in ("train.csv", "test.csv"):
        with open(os.path.join(DATA, f)) as fh:
            rows += [(r["text"], r["category"]) for r in csv.DictReader(fh)]
    texts = [t for t, _ in rows]
    cv = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, norm=None)
    wv = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, norm=None)
    x = sp.hstack([cv.fit_transform(texts), wv.fit_transform(texts)]).tocsr()
    return normalize(x), np.array([lab for _, lab in rows])


def find(par, i):
    while par[i] != i:
        par[i] = par[par[i]]
        i = par[i]
    return i


def groups(b, r, min_size, rim, twin=False):
    n, m = len(b), len(r)
    s = r @ np.vstack([b, r]).T
    s[np.arange(m), n + np.arange(m)] = -9
    nb = np.argpartition(-s, K, axis=1)[:, :K]
    new = binom.sf((nb >= n).sum(1) - 1, K, (m - 1) / (n + m - 1)) < PV
    par = list(range(m))
    for i in np.where(new)[0]:
        for c in nb[i]:
            if c >= n and new[c - n]:
                a, bb = find(par, i), find(par, c - n)
                if a != bb:
                    par[a] = bb
    lab = np.array([find(par, i) if new[i] else -1 for i in range(m)])
    keep = lab.copy()
    for i in np.where(lab >= 0)[0]:
        if sum(1 for c in nb[i] if c >= n and lab[c - n] == lab[i]) < rim * K:
            keep[i] = -1
        elif twin and has_twin(s[i], n, lab, i):
            keep[i] = -1
    out = [np.where(keep == g)[0] for g in set(keep[keep >= 0])]
    return [g for g in out if len(g) >= min_size]


def has_twin(row, n, lab, i):
    """segmentd's twin rule: a baseline point nearer than every other member
    of i's group (row: i's similarities to the baseline, then the recent)."""
    mates = np.where(lab == lab[i])[0]
    mates = mates[mates != i]
    return len(mates) == 0 or row[:n].max() > row[n + mates].max()


def member_stats(e, base, ids, labs, held, min_size, rim):
    """Per group of the rim rule alone (>= min_size): (held-back members,
    those with a twin, known members, those with a twin)."""
    n, m = len(base), len(ids)
    b, r = e[base], e[ids]
    s = r @ np.vstack([b, r]).T
    s[np.arange(m), n + np.arange(m)] = -9
    out = np.zeros(4, int)
    for g in groups(b, r, min_size, rim):
        lab = np.full(m, -1)
        lab[g] = 0
        for i in g:
            h = 0 if labs[ids[i]] in held else 2
            out[h] += 1
            out[h + 1] += has_twin(s[i], n, lab, i)
    return out


def sentence_vectors(n):
    """The sentence encoder's rows in load()'s order, from drift_banking.py's
    cache (built there on first use)."""
    import drift_banking
    rows = drift_banking.read_rows()
    assert len(rows) == n
    return normalize(drift_banking.sentence_matrix(rows))


def group_sizes(e, base, stream, full, labs, held, a):
    """Stationary group sizes (all checks), then the largest groups at
    emerging checks 1 and 2, with no minimum size."""
    stat = collections.Counter(len(g) for t in range(M // PER + 1, a.stationary + 1)
                               for g in groups(e[base], e[stream[t * PER - M:t * PER]], 1,
                                               a.rim, a.twin))
    out = {"stationary": sorted(stat.items())}
    for t in (1, 2):
        end = (a.stationary + t) * PER
        ids = full[end - M:end]
        gs = sorted(groups(e[base], e[ids], 1, a.rim, a.twin), key=len, reverse=True)[:4]
        out[f"emerging {t}"] = [(len(g), round(float(np.isin(labs[ids[g]], held).mean()), 2))
                                for g in gs]
    return out


def embed(x, kind, warm, extra):
    if kind == "use":
        return sentence_vectors(x.shape[0])
    p = np.random.default_rng(99).standard_normal((x.shape[1], DIM)).astype(np.float32) / 16
    if kind == "raw":
        return normalize(x @ p)
    fit = x[np.concatenate([warm, extra])] if kind == "oracle" else x[warm]
    seen = np.asarray((fit != 0).sum(0)).ravel() > 0
    cols = np.where(seen)[0]
    lsa = x[:, cols] @ TruncatedSVD(DIM, n_iter=4, random_state=0).fit(fit[:, cols]).components_.T
    if not kind.startswith("oov"):
        return normalize(lsa)
    w = float(kind.split(":")[1])
    return normalize(np.hstack([lsa, w * (x[:, np.where(~seen)[0]] @ p[~seen])]))


def run(x, labs, seed, a):
    rng = np.random.default_rng(seed)
    held = sorted(rng.choice(sorted(set(labs)), 5, replace=False).tolist())
    kept = np.where(~np.isin(labs, held))[0]
    newi = np.where(np.isin(labs, held))[0]
    perm = rng.permutation(kept)
    warm, pool = perm[:3000], perm[3000:]
    base = rng.choice(pool, NB, replace=True)
    stream = np.concatenate([rng.choice(pool, PER, replace=True) for _ in range(a.stationary)])
    n_new = int(PER * SHARE)
    em = [rng.permutation(np.concatenate([rng.choice(pool, PER - n_new, replace=True),
                                          rng.choice(newi, n_new, replace=True)]))
          for _ in range(a.emerging)]
    full = np.concatenate([stream] + em)
    out = {}
    for kind in a.encoders.split(","):
        e = embed(x, kind, warm, newi)
        if a.group_sizes:
            out[kind] = group_sizes(e, base, stream, full, labs, held, a)
            continue
        if a.member_stats:
            out[kind] = sum(member_stats(e, base, full[(a.stationary + t) * PER - M:
                                                       (a.stationary + t) * PER],
                                         labs, held, a.min_size, a.rim) for t in (2, 3))
            continue
        false = sum(len(groups(e[base], e[stream[t * PER - M:t * PER]], a.min_size, a.rim,
                               a.twin))
                    for t in range(M // PER + 1, a.stationary + 1))
        first = None
        for t in range(1, a.emerging + 1):
            end = (a.stationary + t) * PER
            ids = full[end - M:end]
            gs = groups(e[base], e[ids], a.min_size, a.rim, a.twin)
            if gs:
                g = max(gs, key=len)
                first = (t, round(float(np.isin(labs[ids[g]], held).mean()), 2))
                break
        out[kind] = (first, false)
    return held, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2,3,4,5")
    ap.add_argument("--encoders", default="lsa")
    ap.add_argument("--min-size", type=int, default=30)
    ap.add_argument("--rim", type=float, default=0.3)
    ap.add_argument("--stationary", type=int, default=10)
    ap.add_argument("--emerging", type=int, default=5)
    ap.add_argument("--twin", action="store_true", help="segmentd's twin rule too")
    ap.add_argument("--member-stats", action="store_true",
                    help="instead: members of the rim rule's groups at emerging intervals "
                    "2 and 3 (held-back, with a twin, known, with a twin)")
    ap.add_argument("--group-sizes", action="store_true",
                    help="instead: group sizes in stationary and early emerging checks")
    a = ap.parse_args()
    x, labs = load()
    for s in map(int, a.seeds.split(",")):
        held, out = run(x, labs, s, a)
        print(s, held, out, flush=True)


if __name__ == "__main__":
    main()
