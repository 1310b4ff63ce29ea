#!/usr/bin/env bash
# `make smoke`: build a runtime-only environment exactly as the Dockerfile does
# (scripts/install.sh: requirements.txt + non-editable package, no dev tools), then run the
# main journeys with it from outside the checkout, so nothing resolves from the work tree.
#   scripts/smoke.sh SMOKE_DIR [DEV_PYTHON]
# With DEV_PYTHON (a dev environment's python with pytest + playwright) the browser part runs
# too: the installed app is served with `phoenix ui` and save + promote are driven in Chromium.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
SMOKE="$(mkdir -p "$1" && cd "$1" && pwd)"
DEV_PY="${2:-}"
PY="${PYTHON:-python3}"

step() { printf '\n== smoke: %s\n' "$*"; }

step "runtime-only environment"
rm -rf "$SMOKE/venv" "$SMOKE/work"
"$PY" -m venv "$SMOKE/venv"
"$SMOKE/venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
sh "$SRC/scripts/install.sh" "$SMOKE/venv/bin/python"
PHX="$SMOKE/venv/bin/phoenix"
if "$SMOKE/venv/bin/python" -c "import pytest" 2>/dev/null; then
  echo "dev tool pytest leaked into the runtime environment" >&2; exit 1
fi

WORK="$SMOKE/work"
mkdir -p "$WORK"
cd "$WORK"   # never the checkout: imports must come from site-packages
export PHOENIX_DATA_DIR="$WORK/data" PHOENIX_DATABASE_URL="sqlite:///$WORK/data/phoenix.db" \
       PHOENIX_GITOPS_REPO="$WORK/data/gitops" PHOENIX_RUNTIME=local
mkdir -p "$PHOENIX_DATA_DIR"
installed="$("$SMOKE/venv/bin/python" -c 'import core; print(core.__file__)')"
case "$installed" in "$SMOKE"/venv/*) ;; *) echo "core imported from $installed, not the install" >&2; exit 1;; esac

step "database and the first account"
"$PHX" db upgrade
"$PHX" user init | grep -q "initial admin password: "
export PHOENIX_USER=admin   # state-changing commands need an identity (docs/accounts.md)

step "render every template"
for name in $("$PHX" pipeline list | awk 'NR>1 && /^process-/ {print $1}'); do
  "$PHX" pipeline render "$name" --out "render/$name" >/dev/null
  test -s "render/$name/collector.yaml" && ls "render/$name/k8s/"*.yaml >/dev/null
  echo "rendered $name"
done
test "$(ls render | wc -l)" -eq 7

step "import and save a pipeline version"
"$PHX" pipeline export process-topk-v1 --out topk.yaml
"$PHX" pipeline import topk.yaml --name smoke-topk --message "smoke: first version"
"$PHX" pipeline history smoke-topk | tee history.txt
grep -q "smoke: first version" history.txt

step "estimate"
"$PHX" fleet generate --nodes 5 --procs 80 --scrapes 2 --seed 7 --out fleet.csv
"$PHX" estimate --pipeline smoke-topk --snapshot fleet.csv --json > estimate.json
"$SMOKE/venv/bin/python" - <<'PY'
import json
r = json.load(open("estimate.json"))
assert r["series_out"] < r["series_in"], r
print(f"estimate: {r['series_in']} -> {r['series_out']} series")
PY

step "a short local experiment to Completed"
"$PHX" experiment run --baseline process-baseline-v1 --candidate smoke-topk \
  --duration 8s --interval 1s --load realistic --wait --json > run.json
EXP="$("$SMOKE/venv/bin/python" -c 'import json; r = json.load(open("run.json")); assert r["state"] == "Completed", r["state"]; print(r["id"])')"
echo "experiment $EXP completed"

step "promote"
"$PHX" experiment promote "$EXP" --force --reason "smoke test promotes whatever the verdict"

step "reports in all three formats"
for fmt in csv html pdf; do
  "$PHX" experiment report "$EXP" --format "$fmt" --out "report.$fmt"
  test -s "report.$fmt"
done
head -c 5 report.pdf | grep -q '%PDF-'
grep -q "Verdict" report.html

if [ -n "$DEV_PY" ]; then
  step "the installed app serving, save and promote driven in the browser"
  cd "$SRC"
  PHOENIX_E2E_PHOENIX="$PHX" "$DEV_PY" -m pytest tests/e2e -q -p no:cacheprovider
fi
step "passed"
