#!/usr/bin/env bash
# make-fixture.sh REV NAME — records what exportd at git revision REV leaves in
# its databases, for the upgrade test (cmd/exportd TestUpgrade) to open with
# the current exportd. Run it from the repository root, with a PostgreSQL in
# EXPORTD_TEST_DATABASE_URL (a postgres:// URL) and pg_dump on PATH:
#
#   bash internal/migrations/testdata/upgrade/make-fixture.sh v0.1.0 v0.1.0
#
# It writes internal/migrations/testdata/upgrade/NAME/ with, per store:
#   sqlite/data/      the data folder (exportd.db and artifacts/)
#   postgres/dump.sql pg_dump of the schema "exportd_fixture" (no owners)
#   postgres/artifacts/
# and fixture.json per store: the tenant, an admin key, the COMPLETED export's
# job id, and the SHA-256 of its artifact as that release served it.
set -euo pipefail
rev=${1:?usage: make-fixture.sh REV NAME}
name=${2:?usage: make-fixture.sh REV NAME}
: "${EXPORTD_TEST_DATABASE_URL:?set EXPORTD_TEST_DATABASE_URL to a postgres:// URL}"
out=internal/migrations/testdata/upgrade/$name
[ ! -e "$out" ] || { echo "$out exists; pick another NAME or delete it" >&2; exit 1; }

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir "$work/src"
git archive "$rev" | tar -x -C "$work/src"
(cd "$work/src" && CGO_ENABLED=0 go build -o "$work/exportd" ./cmd/exportd)
exportd=$work/exportd
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port

# record STORE_DIR ARGS...: a tenant, a key, events written through the API,
# one COMPLETED SOC 2 export; ARGS select the store.
record() {
  local dir=$1; shift
  mkdir -p "$dir"
  local tenant key job
  tenant=$("$exportd" tenant create --name "Upgrade Fixture" --compliance-pack "$@")
  key=$("$exportd" apikey create --tenant "$tenant" --role admin --principal fixture@example.com --name fixture "$@")
  "$exportd" seed-demo --tenant "$tenant" --events 300 --from 2026-01-01 --to 2026-03-01 "$@" >/dev/null
  "$exportd" serve --addr "127.0.0.1:$port" "$@" 2>"$work/serve.log" &
  local pid=$!
  for _ in $(seq 1 100); do curl -fs "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  # Events with the metadata shapes the chain must keep verifying: nested,
  # non-ASCII, numbers that JSON writes in more than one way.
  curl -fs -X POST "$base/v1/audit/events" -H "X-API-Key: $key" -H 'Content-Type: application/json' -d '{"events":[
    {"client_event_id":"fx-1","occurred_at":"2026-02-01T10:00:00.123456Z","actor_id":"zoë@example.com","actor_type":"user","action":"record.update","resource_type":"patient","resource_id":"p-1","outcome":"success","category":"data","phi":true,"ip":"2001:db8::1","metadata":{"changed":["dob","name"],"note":"größe — 東京","n":1.5e3,"z":-0,"nested":{"a":[1,2,{"b":null}]}}},
    {"client_event_id":"fx-2","occurred_at":"2026-02-02T11:00:00Z","actor_id":"svc-backup","actor_type":"service","action":"auth.login","outcome":"failure","category":"access","ip":"203.0.113.9","metadata":{"reason":"bad password","attempt":3}}
  ]}' >/dev/null
  job=$(curl -fs -X POST "$base/v1/audit/exports" -H "X-API-Key: $key" -H 'Content-Type: application/json' \
    -d '{"report_type":"soc2","start_date":"2026-01-01T00:00:00Z","end_date":"2026-03-31T23:59:59Z","format":"json"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
  for _ in $(seq 1 300); do
    [ "$(curl -fs "$base/v1/audit/exports/$job" -H "X-API-Key: $key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" = COMPLETED ] && break
    sleep 0.2
  done
  curl -fs -o "$work/artifact" "$base/v1/audit/exports/$job/download" -H "X-API-Key: $key"
  kill -TERM "$pid"; wait "$pid" || true
  python3 - "$dir/fixture.json" "$rev" "$tenant" "$key" "$job" "$work/artifact" <<'PY'
import hashlib, json, sys
out, rev, tenant, key, job, artifact = sys.argv[1:]
json.dump({"revision": rev, "tenant": tenant, "key": key, "job_id": job,
           "artifact_sha256": hashlib.sha256(open(artifact, "rb").read()).hexdigest()},
          open(out, "w"), indent=2)
PY
}

record "$out/sqlite" --data-dir "$out/sqlite/data"

schema=exportd_fixture
psql -q -v ON_ERROR_STOP=1 "$EXPORTD_TEST_DATABASE_URL" -c "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema"
sep='?'; case $EXPORTD_TEST_DATABASE_URL in *\?*) sep='&';; esac
record "$out/postgres" --database-url "$EXPORTD_TEST_DATABASE_URL${sep}search_path=$schema" \
  --blob-url "file://$PWD/$out/postgres/artifacts"
pg_dump --schema="$schema" --no-owner --no-privileges --inserts "$EXPORTD_TEST_DATABASE_URL" > "$out/postgres/dump.sql"
psql -q "$EXPORTD_TEST_DATABASE_URL" -c "DROP SCHEMA $schema CASCADE"
echo "wrote $out"
