"""kmeans_peers.py -- faiss and scikit-learn k-means on the bench data set.

Reads what bench/kmeans_bench wrote in DIR (kmeans_meta.json,
kmeans_points.f32, optionally kmeans_ours_centroids.f32), runs

  faiss.Kmeans   niter=iters, nredo=1, random init, all points
                 (max_points_per_centroid raised so nothing is subsampled),
                 one OpenMP thread
  sklearn KMeans init="k-means++" (greedy, 2 + ln k trials), n_init=1,
                 max_iter=iters, tol=0, algorithm="lloyd", one thread

timing each fit (best of `repeats`), and scores every method's final
centroids with the same float64 code: inertia = sum over all points of the
squared distance to the nearest final centroid. Prints one JSON object.
Run with Debian's /usr/bin/python3 (python3-faiss, python3-sklearn).

usage: kmeans_peers.py DIR
"""
import json
import os
import sys
import time

import numpy as np


def inertia(x, c, chunk=8192):
    """Sum of squared distances to the nearest centroid, in float64."""
    c = c.astype(np.float64)
    cn = (c * c).sum(axis=1)
    total = 0.0
    for i in range(0, x.shape[0], chunk):
        xb = x[i:i + chunk].astype(np.float64)
        d = (xb * xb).sum(axis=1)[:, None] - 2.0 * xb @ c.T + cn[None, :]
        total += np.maximum(d.min(axis=1), 0.0).sum()
    return float(total)


def best_of(repeats, fit):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fit()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run_faiss(x, meta):
    import faiss
    faiss.omp_set_num_threads(1)
    n, dim = x.shape

    def fit():
        km = faiss.Kmeans(dim, meta["k"], niter=meta["iters"], nredo=1,
                          seed=meta["seed"], max_points_per_centroid=n,
                          verbose=False)
        km.train(x)
        return km

    secs, km = best_of(meta["repeats"], fit)
    return {"method": "faiss", "version": faiss.__version__,
            "seconds": secs, "inertia": inertia(x, km.centroids),
            "obj_last_iter": float(km.obj[-1]), "iters": meta["iters"]}


def run_sklearn(x, meta):
    import sklearn
    from sklearn.cluster import KMeans
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None

    def fit():
        km = KMeans(n_clusters=meta["k"], init="k-means++", n_init=1,
                    max_iter=meta["iters"], tol=0.0, algorithm="lloyd",
                    random_state=meta["seed"] % (2**32))
        if threadpool_limits is None:
            return km.fit(x)
        with threadpool_limits(limits=1):
            return km.fit(x)

    secs, km = best_of(meta["repeats"], fit)
    return {"method": "sklearn", "version": sklearn.__version__,
            "seconds": secs, "inertia": inertia(x, km.cluster_centers_),
            "inertia_reported": float(km.inertia_), "iters": int(km.n_iter_)}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    with open(os.path.join(d, "kmeans_meta.json")) as f:
        meta = json.load(f)
    n, dim = meta["n"], meta["dim"]
    x = np.fromfile(os.path.join(d, "kmeans_points.f32"), dtype="<f4")
    x = x.reshape(n, dim)
    out = {"meta": meta, "faiss": run_faiss(x, meta),
           "sklearn": run_sklearn(x, meta)}
    ours = os.path.join(d, "kmeans_ours_centroids.f32")
    if os.path.exists(ours):
        c = np.fromfile(ours, dtype="<f4").reshape(meta["k"], dim)
        out["segmentd_inertia"] = inertia(x, c)
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
