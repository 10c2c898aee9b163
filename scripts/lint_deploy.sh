#!/usr/bin/env bash
# Checks the packaging files with real tools (no Docker engine or cluster
# needed):
#   Dockerfile                 dockerfile-utils lint (npm; the Dockerfile
#                              language server's linter; hadolint is not
#                              packaged for Debian 12 and its npm wrapper
#                              downloads from GitHub)
#   deploy/k8s/*.yaml,         parse as YAML (python3-yaml), each document
#   deploy/compose/*.yml       with apiVersion/kind (k8s) or services (compose)
#   deploy/compose/prometheus.yml   promtool check config (Debian prometheus)
#   deploy/systemd/segmentd.service systemd-analyze verify, with ExecStart
#                              pointed at BINARY (default build/segmentd)
# A check whose tool is missing is reported and skipped; exit 77 when every
# check was skipped, 1 when one failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=$(readlink -f "${1:-build/segmentd}")
ran=0 failed=0

step() { # name, then the command
  local name=$1; shift
  if "$@"; then echo "lint_deploy: ok   $name"; ran=$((ran + 1))
  else echo "lint_deploy: FAIL $name" >&2; failed=1; fi
}
skip() { echo "lint_deploy: skip $1 ($2)"; }

if command -v npx >/dev/null; then
  step Dockerfile timeout 300 npx --yes dockerfile-utils@0.16.3 lint Dockerfile
else skip Dockerfile "npx not found"; fi

if python3 -c 'import yaml' 2>/dev/null; then
  step "k8s and compose YAML" python3 - <<'PY'
import glob, sys, yaml
ok = True
for f in sorted(glob.glob("deploy/k8s/*.yaml")):
    for d in yaml.safe_load_all(open(f)):
        if d and not (d.get("apiVersion") and d.get("kind")):
            print(f"{f}: a document without apiVersion/kind"); ok = False
c = yaml.safe_load(open("deploy/compose/docker-compose.yml"))
if not c.get("services", {}).get("segmentd"):
    print("docker-compose.yml: no segmentd service"); ok = False
sys.exit(0 if ok else 1)
PY
else skip YAML "python3-yaml not installed"; fi

if command -v promtool >/dev/null; then
  step prometheus.yml promtool check config deploy/compose/prometheus.yml
else skip prometheus.yml "promtool not found"; fi

if command -v systemd-analyze >/dev/null && [ -x "$bin" ]; then
  tmp=$(mktemp -d)
  sed "s|/usr/local/bin/segmentd|$bin|g" deploy/systemd/segmentd.service \
    >"$tmp/segmentd.service"
  step segmentd.service bash -c "out=\$(systemd-analyze verify '$tmp/segmentd.service' 2>&1); echo \"\$out\"; [ -z \"\$out\" ]"
  rm -rf "$tmp"
else skip segmentd.service "systemd-analyze or $bin not found"; fi

[ "$failed" -eq 0 ] || exit 1
[ "$ran" -gt 0 ] || exit 77
