#!/usr/bin/python3
"""False-alarm rate of the MMD permutation test under bench/drift_banking.py's
stationary sampling design, offline, many times over: how far one 600-check
figure of the bench can stray from the test's level.

Per replicate and seed (12 seeds x 50 checks = 600 checks, as the bench):
5 intents held back and 3,000 warm-up texts set aside as the bench does
(numpy draws of its own), a 2,000-text baseline drawn with replacement from
the rest, then per check 500 reference rows drawn afresh from the baseline
(as src/drift_detect.c) and 200 current texts drawn with replacement from
the same texts. The test is src/drift_stats.c's: RBF kernel, sigma from the
median heuristic (here over all pairs, not a strided sample), unbiased
MMD^2, 200 random relabellings, p = (1 + hits) / 201, drifted when p < 0.05.
Vectors: the sentence encoder's (drift_banking.py --vectors use, cached).

usage: /usr/bin/python3 bench/mmd_calibration.py [--reps 12]
prints per replicate the false alarms of 600 checks, then their mean and
spread, beside the level 10/201.
"""
import argparse

import numpy as np

import drift_banking

REF, CUR, BASE, PERMS, SEEDS, CHECKS, ALPHA = 500, 200, 2000, 200, 12, 50, 0.05


def stats(k, y, n, m):
    """Unbiased MMD^2 for each labelling (columns of y: 1 = current)."""
    ky = k @ y
    uy = (y * ky).sum(0)
    cross = ((1 - y) * ky).sum(0)
    ux = k.sum() - uy - 2 * cross
    return ux / (n * (n - 1)) + uy / (m * (m - 1)) - 2 * cross / (n * m)


def p_value(ref, cur, rng):
    x = np.vstack([ref, cur]).astype(np.float64)
    n, m, N = len(ref), len(cur), len(ref) + len(cur)
    g = x @ x.T
    sq = np.diag(g)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * g, 0)
    med = np.median(d2[np.triu_indices(N, 1)])
    k = np.exp(-d2 / med)  # sigma^2 = med / 2
    np.fill_diagonal(k, 0)
    y0 = np.zeros((N, 1))
    y0[n:] = 1
    obs = stats(k, y0, n, m)[0]
    y = np.zeros((N, PERMS))
    for b in range(PERMS):
        y[rng.choice(N, m, replace=False), b] = 1
    return (1 + (stats(k, y, n, m) >= obs - 1e-12).sum()) / (1 + PERMS)


def replicate(u, labs, rep):
    drifted = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(1000 * rep + seed)
        held = rng.choice(sorted(set(labs)), 5, replace=False)
        pool = rng.permutation(np.where(~np.isin(labs, held))[0])[3000:]
        base = rng.choice(pool, BASE, replace=True)
        for _ in range(CHECKS):
            ref = u[base[rng.choice(BASE, REF, replace=False)]]
            cur = u[rng.choice(pool, CUR, replace=True)]
            drifted += p_value(ref, cur, rng) < ALPHA
    return drifted


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=12)
    a = ap.parse_args()
    rows = drift_banking.read_rows()
    u = drift_banking.sentence_matrix(rows)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    labs = np.array([lab for _, lab in rows])
    n = SEEDS * CHECKS
    got = []
    for rep in range(a.reps):
        got.append(replicate(u, labs, rep))
        print(f"replicate {rep}: {got[-1]}/{n} = {got[-1] / n:.1%}", flush=True)
    r = np.array(got) / n
    print(f"{a.reps} replicates: mean {r.mean():.2%}, min {r.min():.1%}, max {r.max():.1%}, "
          f"sd {r.std(ddof=1) if a.reps > 1 else 0:.2%}; all {sum(got)}/{n * a.reps}; "
          f"the test's level {10 / 201:.2%}")


if __name__ == "__main__":
    main()
