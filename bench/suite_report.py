#!/usr/bin/python3
"""suite_report.py -- the table of bench/run.sh (issue 7).

usage: suite_report.py FIGURES_ENV WORKDIR OUT_MD
FIGURES_ENV holds key=value lines written by run.sh; WORKDIR may hold
perf_self.txt / perf_dso.txt / perf_children.txt and the raw JSON lines.
Prints the table (figure | segmentd | ceiling | ratio | target | met?) and
writes it with the machine description to OUT_MD. Stdlib only.
"""
import os
import sys


def main():
    f = {}
    for line in open(sys.argv[1]):
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            f[k] = v
    work, out = sys.argv[2], sys.argv[3]

    def g(k):
        try:
            return float(f[k])
        except (KeyError, ValueError):
            return None

    def num(v, fmt="{:,.0f}"):
        return "n/a" if v is None else fmt.format(v)

    def ratio(a, b):
        return None if a is None or b in (None, 0) else a / b

    users = int(g("cfg_users"))
    loaded = int(g("events_loaded"))
    scale = "%s users x %.1f events" % (f"{users:,}", loaded / users)
    rows = []  # figure, segmentd, ceiling, ratio, target, met

    def add(fig, sd, ceil, r, target, met):
        rows.append((fig, sd, ceil, "n/a" if r is None else "%.2f" % r, target,
                     "-" if met is None else ("yes" if met else "NO")))

    for c in ("8", "64"):
        sd, ce = g("sd_c%s_rps" % c), g("ceil_c%s_rps" % c)
        r = ratio(sd, ce)
        add("lookup req/s, wrk -c%s (%s, random ids)" % (c, scale), num(sd),
            num(ce) + " ceiling_http", r, ">= 0.8 x", r is not None and r >= 0.8)
    sd, ce = g("sd_c8_p99"), g("ceil_c8_p99")
    r = ratio(sd, ce)
    add("lookup p99 ms, -c8", num(sd, "{:.2f}"), num(ce, "{:.2f}"), r,
        "<= 1.5 x", r is not None and r <= 1.5)
    sd, ce = g("sd_c64_p99"), g("ceil_c64_p99")
    add("lookup p99 ms, -c64", num(sd, "{:.2f}"), num(ce, "{:.2f}"),
        ratio(sd, ce), "(info)", None)
    b, c = g("batch_server_ms"), g("batch_ms")
    add("batch lookup 1,000 new random ids, ms server time (Server-Timing; "
        "client side %s), median of 20" % num(c, "{:.1f}"),
        num(b, "{:.1f}"), "-", None, "<= 5 ms", b is not None and b <= 5)
    b, c = g("batch_repeat_server_ms"), g("batch_repeat_ms")
    add("the same batch again at once (from the lookup cache), ms server "
        "time (client side %s)" % num(c, "{:.1f}"),
        num(b, "{:.1f}"), "-", None, "(info)", None)
    sd, ce = g("ingest_rows_s"), g("sqlite_rows_s")
    r = ratio(sd, ce)
    add("event ingest rows/s (%s events, batches of 1,000, 4 clients)"
        % f"{int(g('cfg_ingest_rows')):,}", num(sd), num(ce) + " ceiling_sqlite",
        r, ">= 1.5 x", r is not None and r >= 1.5)
    t = g("texts_s")
    add("text ingest texts/s (built-in encoder, %s BANKING77 texts, "
        "batches of 1,000, 4 clients)" % f"{int(g('cfg_texts')):,}", num(t), "-",
        None, ">= 30,000/s", t is not None and t >= 30000)
    sd, ce = g("km_iter_ms"), g("sgemm1_ms")
    r = ratio(sd, ce)
    add("k-means ms/iteration, 100k x 256, K=64, 1 thread", num(sd, "{:.1f}"),
        num(ce, "{:.1f}") + " ceiling_sgemm", r, "<= 1.25 x",
        r is not None and r <= 1.25)
    sd, ce = g("km_seconds"), g("faiss_seconds")
    r = ratio(sd, ce)
    add("k-means 20 iterations, s (incl. seeding) vs faiss %s"
        % f.get("faiss_version", ""), num(sd, "{:.2f}"), num(ce, "{:.2f}") +
        " faiss", r, "< 1 x", r is not None and r < 1)
    sd, ce = g("km_inertia"), g("sk_inertia")
    r = ratio(sd, ce)
    add("k-means final inertia vs scikit-learn %s k-means++"
        % f.get("sk_version", ""), num(sd, "{:.4e}"), num(ce, "{:.4e}") +
        " sklearn", r, "<= 1.01 x", r is not None and r <= 1.01)
    s1, s2 = g("sgemm1_ms"), g("sgemm2_ms")
    add("sgemm ms, 2 OpenBLAS threads vs 1 (BLAS default)", num(s2, "{:.1f}"),
        num(s1, "{:.1f}") + " (1 thread)", ratio(s2, s1), "(info)", None)
    rl, re_, rr = g("rss_loaded_kb"), g("rss_empty_kb"), g("rss_restart_kb")
    add("RSS after loading, MiB (%s + %s texts)" % (
        scale, f"{int(g('cfg_texts')) + 2000:,}"), num(rl / 1024, "{:.0f}"),
        "-", None, "(info)", None)
    bpu = (rl - re_) * 1024 / users
    add("bytes per user (RSS loaded - RSS empty) / users", num(bpu), "-", None,
        "<= 2,048", bpu <= 2048)
    add("bytes per user after restart ((RSS - RSS empty) / users)",
        num((rr - re_) * 1024 / users), "-", None, "(info)", None)
    ae, al, ar = g("anon_empty_kb"), g("anon_loaded_kb"), g("anon_restart_kb")
    if None not in (ae, al, ar):
        add("anonymous (heap) bytes per user, loaded / after restart "
            "(RSS without SQLite's mmap'd file pages)",
            "%s / %s" % (num((al - ae) * 1024 / users),
                         num((ar - ae) * 1024 / users)), "-", None, "(info)",
            None)
    rs = g("restart_s")
    same = f.get("models_before") == f.get("models_after")
    add("restart: start to /readyz 200, s (models %s %s)" % (
        f.get("models_after", "?"), "kept" if same else "CHANGED from " +
        f.get("models_before", "?")), num(rs, "{:.2f}"), "-", None,
        "<= 5 s, nothing re-trained", rs is not None and rs <= 5 and same)
    mp = g("mixed_p99")
    add("mixed: lookup p99 ms (-c8) while ingesting %s ev/s (half)"
        % num(g("mixed_rate")), num(mp, "{:.2f}"), "-", None, "<= 5 ms",
        mp is not None and mp <= 5)
    m5 = int(g("mixed_lookup_5xx") or 0) + int(g("mixed_ingest_5xx") or 0)
    add("mixed: 5xx answers (lookups + ingest)", str(m5), "-", None, "0",
        m5 == 0)
    m4 = int(g("mixed_lookup_429") or 0) + int(g("mixed_ingest_429") or 0)
    add("mixed: 429 answers (4 clients, queue limit 256 batches)", str(m4),
        "-", None, "0", m4 == 0)
    add("mixed: lookups/s and ingest rows/s reached",
        "%s / %s" % (num(g("mixed_rps")), num(g("mixed_ingest_rows_s"))), "-",
        None, "(info)", None)

    head = ("figure", "segmentd", "ceiling", "ratio", "target", "met?")
    w = [max(len(str(r[i])) for r in rows + [head]) for i in range(6)]
    line = lambda r: "  ".join(str(r[i]).ljust(w[i]) for i in range(6))
    print("\n" + line(head))
    print("  ".join("-" * x for x in w))
    for r in rows:
        print(line(r))

    def read(name):
        p = os.path.join(work, name)
        return open(p).read().rstrip() if os.path.exists(p) else ""

    md = []
    md.append("# Benchmark suite (bench/run.sh), %s\n" % os.path.basename(out)[:10])
    md.append("Machine: %s vCPUs, %s, %s RAM, %s, database on %s; segmentd "
              "commit %s. Load average at start %s, at end %s; CPU pressure "
              "(PSI some avg10) at start %s, at end %s. Run time %s s.\n" % (
                  f["machine_nproc"], f["machine_cpu"], f["machine_ram"],
                  f["machine_kernel"], f["machine_fs"], f["machine_commit"],
                  f["machine_load_start"], f["machine_load_end"],
                  f.get("machine_psi_start", "n/a"),
                  f.get("machine_psi_end", "n/a"), f["elapsed_s"]))
    md.append("Scale: %s = %s events (the issue's 1M users x 20 events do "
              "not load within the 10-minute bound on this machine: loading "
              "ran at %s events/s), %s texts "
              "(2,000 to train the intents model, then %s measured). Each wrk "
              "run %s s, 2 wrk threads; a real segment answer is %s bytes and "
              "ceiling_http answers that size. k-means figures: best of %s "
              "(bench/kmeans.sh's data and peers). Every ceiling was measured "
              "in this run.\n" % (
                  scale, f"{loaded:,}", num(g("load_rows_s")),
                  f"{int(g('cfg_texts')) + 2000:,}",
                  f"{int(g('cfg_texts')):,}", f["cfg_dur"], f["answer_bytes"],
                  f["cfg_km_repeats"]))
    md.append("| " + " | ".join(head) + " |")
    md.append("|" + "---|" * 6)
    for r in rows:
        md.append("| " + " | ".join(str(x) for x in r) + " |")
    md.append("")
    md.append("Other figures: ceiling_sgemm best call %s ms (1 thread, %s "
              "GFLOP/s at the median), %s ms (2 threads); lookup p50 -c8 %s ms "
              "(ceiling %s), -c64 %s ms (ceiling %s); lookup cache over the wrk "
              "runs: %s hits, %s misses; batch lookup p90 %s ms; "
              "event ingest batch p99 %s ms; text batch p99 %s ms; load of "
              "the remaining events (batches of 10,000) %s rows/s; segmentd "
              "stop (SIGTERM to exit) %.2f s; RSS empty %s MiB, after restart "
              "%s MiB; database %s MiB.\n" % (
                  f["sgemm1_best"], f["sgemm1_gflops"], f["sgemm2_best"],
                  f["sd_c8_p50"], f["ceil_c8_p50"], f["sd_c64_p50"],
                  f["ceil_c64_p50"], num(g("cache_hits")),
                  num(g("cache_misses")), f["batch_p90_ms"], f["ingest_p99_ms"],
                  f["texts_p99_ms"], num(g("load_rows_s")), g("stop_s"),
                  num(g("rss_empty_kb") / 1024), num(g("rss_restart_kb") / 1024),
                  f["db_mib"]))
    prof = read("perf_self.txt")
    if prof:
        md.append("## Profile of the biggest gap: %s (ceiling %s x ahead)\n" % (
            f["prof_target"], f["prof_gap"]))
        md.append("`perf record --call-graph dwarf -F 499` of segmentd under "
                  "that load, %s s (on-CPU samples). Self time by shared "
                  "object:\n" % f["cfg_dur"])
        md.append("```\n" + read("perf_dso.txt") + "\n```\n")
        md.append("Top symbols (self):\n")
        md.append("```\n" + prof + "\n```\n")
        sd = read("perf_sd.txt")
        if sd:
            md.append("segmentd's own functions (self, share of all samples):\n")
            md.append("```\n" + sd + "\n```\n")
        ch = read("perf_children.txt")
        if ch:
            md.append("Inclusive (children; user-space symbols, kernel and "
                      "unresolved frames left out):\n")
            md.append("```\n" + ch + "\n```\n")
    raw = [read(n) for n in ("sgemm.json", "sqlite.json", "ingest.json",
                             "texts.json", "mixed_ingest.json")]
    md.append("## Raw\n")
    md.append("```\n" + "\n".join(x for x in raw if x) + "\n```\n")
    with open(out, "w") as fh:
        fh.write("\n".join(md))


if __name__ == "__main__":
    main()
