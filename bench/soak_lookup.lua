-- wrk script of bench/soak.sh: suite_lookup.lua's random-user segment
-- lookups and status counts, plus one line of latency percentiles in ms:
-- "lookup p50=.. p90=.. p99=.. p999=.. requests=N errors=N".
-- Run from bench/: wrk ... -s soak_lookup.lua URL -- users.txt
dofile("suite_lookup.lua")

local suite_done = done

function done(summary, latency, requests)
  suite_done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "lookup p50=%.3f p90=%.3f p99=%.3f p999=%.3f requests=%d errors=%d\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    summary.requests, e.connect + e.read + e.write + e.timeout))
end
