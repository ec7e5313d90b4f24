#!/usr/bin/env bash
# The local stack without Docker. Idempotent: a second `up` reuses what is installed and running.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STATE="${DEV_STATE:-$ROOT/.stack}"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
mkdir -p "$STATE/run" "$STATE/log" "$STATE/mail/tmp" "$STATE/mail/new" "$STATE/mail/cur"
export PG_VERSION="${PG_VERSION:-15}"
export KAFKA_PORT=9092 STRIPE_PORT="${STRIPE_PORT:-8420}" SMTP_PORT="${SMTP_PORT:-1025}"
# The web console's local sign-in page (/dev/sign-in): on for the local stack, off by default elsewhere.
export WEB_DEV_SIGN_IN="${WEB_DEV_SIGN_IN:-true}"
# The services reach the local Postgres through its Unix socket: a third less CPU per round trip
# than TCP loopback (tools that connect as tb_admin keep TCP, PG_ADMIN_URL).
export PG_HOST="${PG_HOST:-/var/run/postgresql}"

log() { printf '\033[1m==>\033[0m %s\n' "$*"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds name
  for _ in $(seq 1 $(($2 * 4))); do port_open "$1" && return 0; sleep 0.25; done
  echo "$3 did not open port $1 within $2 s; see $STATE/log" >&2; return 1
}

# A process state of its own: a killed process whose parent has not reaped it yet is a zombie
# (Z), which `kill -0` still counts as alive. Dead (X) and zombie both mean "down".
proc_state() { awk '{ sub(/^.*\) /, ""); print substr($0, 1, 1) }' "/proc/$1/stat" 2>/dev/null; }

running() {
  [ -f "$STATE/run/$1.pid" ] || return 1
  local state; state=$(proc_state "$(cat "$STATE/run/$1.pid")")
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

start_bg() { # name command...: start a daemon unless running, record its pid
  local name=$1; shift
  if running "$name"; then return 0; fi
  nohup "$@" >"$STATE/log/$name.log" 2>&1 &
  echo $! >"$STATE/run/$name.pid"
}

stop_bg() {
  local name=$1
  if running "$name"; then
    local pid; pid=$(cat "$STATE/run/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$STATE/run/$name.pid"
}

install_apt() {
  # chromium: the browser tier drives Debian's Chromium (Playwright's own download cannot work here).
  local want=(postgresql libharfbuzz-subset0 libpango-1.0-0 libpangoft2-1.0-0 poppler-utils fonts-dejavu-core chromium)
  local missing=()
  for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt: installing ${missing[*]}"
    apt-get update -q >"$STATE/log/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$STATE/log/apt.log" 2>&1
  fi
  PG_VERSION=$(ls /usr/lib/postgresql | sort -n | tail -1)
}

install_python() {
  local stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    log "python: installing the project and its pinned dependencies into .venv"
    [ -x "$PY" ] || python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip >"$STATE/log/pip.log" 2>&1
    "$PY" -m pip install -q -e ".[dev]" >>"$STATE/log/pip.log" 2>&1
    touch "$stamp"
  fi
}

install_web_assets() {
  # htmx, Pico CSS and Chart.js from the npm registry, pinned by services/web/package-lock.json; served by the web service.
  local stamp="services/web/node_modules/.installed-$(sha256sum services/web/package-lock.json | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    log "web: installing its static assets (npm ci)"
    (cd services/web && npm ci --no-audit --no-fund) >"$STATE/log/npm.log" 2>&1
    touch "$stamp"
  fi
}

install_kafka() {
  if [ ! -f "$STATE/kafka/libs/.complete" ]; then
    log "kafka: fetching Apache Kafka jars from Maven Central"
    mkdir -p "$STATE/kafka/libs"
    (cd stack/kafka && mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
       -DincludeScope=runtime -DoutputDirectory="$STATE/kafka/libs") >"$STATE/log/mvn.log" 2>&1
    touch "$STATE/kafka/libs/.complete"
  fi
}

start_postgres() {
  if ! pg_lsclusters -h | awk -v v="$PG_VERSION" '$1==v && $2=="main"' | grep -q online; then
    log "postgres: starting cluster $PG_VERSION/main"
    pg_lsclusters -h | awk -v v="$PG_VERSION" '$1==v && $2=="main"' | grep -q . || pg_createcluster "$PG_VERSION" main >/dev/null
    # Postgres' default 128 MB of buffers no longer holds the inbox and projection indexes of a
    # million sessions (bench_cost_growth); a quarter of this machine's memory is far more than needed.
    printf 'shared_buffers = 1GB\n' >"/etc/postgresql/$PG_VERSION/main/conf.d/therapy-billing.conf"
    pg_ctlcluster "$PG_VERSION" main start
    touch "$STATE/run/postgres.started"
  fi
  # The project's roles sign in with their passwords over the socket too (Debian's default is
  # `peer`, which wants an operating-system user of the role's name).
  local hba="/etc/postgresql/$PG_VERSION/main/pg_hba.conf"
  if grep -qE '^local\s+all\s+all\s+peer' "$hba"; then
    sed -i -E 's/^(local\s+all\s+all\s+)peer/\1scram-sha-256/' "$hba"
    pg_ctlcluster "$PG_VERSION" main reload
  fi
  wait_port 5432 30 postgres
  # An admin role that the project's Python tooling uses over TCP to create the database, roles and schemas.
  runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tb_admin') THEN
    CREATE ROLE tb_admin LOGIN SUPERUSER PASSWORD 'tb_admin';
  END IF;
END $$;
SQL
}

start_kafka() {
  if running kafka; then return 0; fi
  if port_open "$KAFKA_PORT"; then log "kafka: a broker already listens on :$KAFKA_PORT, using it"; return 0; fi
  local data="$STATE/kafka/data"
  mkdir -p "$data"
  local props="$STATE/kafka/server.properties"
  { cat stack/kafka/server.properties; echo "log.dirs=$data"; } >"$props"
  if [ ! -f "$data/meta.properties" ]; then
    log "kafka: formatting storage"
    local cid; cid=$(java -cp "$STATE/kafka/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    java -Xmx256m -cp "$STATE/kafka/libs/*" kafka.tools.StorageTool format --standalone -t "$cid" -c "$props" >"$STATE/log/kafka-format.log" 2>&1
  fi
  log "kafka: starting broker on 127.0.0.1:$KAFKA_PORT"
  start_bg kafka java -Xms256m -Xmx768m -XX:+UseG1GC -Dlog4j2.configurationFile="$ROOT/stack/kafka/log4j2.properties" \
    -cp "$STATE/kafka/libs/*" kafka.Kafka "$props"
  wait_port "$KAFKA_PORT" 120 kafka
}

start_stripe() {
  if ! running localstripe && ! port_open "$STRIPE_PORT"; then
    log "localstripe: starting on 127.0.0.1:$STRIPE_PORT"
    start_bg localstripe "$VENV/bin/localstripe" --port "$STRIPE_PORT" --from-scratch
  fi
  wait_port "$STRIPE_PORT" 30 localstripe
}

start_smtp() {
  if ! running smtp && ! port_open "$SMTP_PORT"; then
    log "smtp: aiosmtpd on 127.0.0.1:$SMTP_PORT, mail kept in .stack/mail (Maildir)"
    start_bg smtp "$PY" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$STATE/mail"
  fi
  wait_port "$SMTP_PORT" 30 smtp
}

infra_up() {
  install_apt
  install_python
  install_web_assets
  install_kafka
  start_postgres
  start_kafka
  start_stripe
  start_smtp
  log "database and topics"
  "$PY" -m shared.admin setup
}

# DEV_SERVICES="billing payments" runs a subset (the others elsewhere, or not needed).
read -r -a SERVICES <<<"${DEV_SERVICES:-billing payments documents notifications reports web}"

start_missing() {
  # Exactly what is down is (re)started; a running service is left alone.
  for s in "${SERVICES[@]}"; do
    if ! running "svc-$s"; then
      [ -f "$STATE/run/svc-$s.pid" ] && log "$s is down (pid $(cat "$STATE/run/svc-$s.pid")): restarting"
      start_bg "svc-$s" "$PY" -m "services.$s"
    fi
  done
}

services_up() {
  start_missing
  for s in "${SERVICES[@]}"; do
    "$PY" -m shared.admin wait-ready "$s" 60 || { tail -30 "$STATE/log/svc-$s.log" >&2; exit 1; }
  done
  log "services: billing :8001, payments :8002, documents :8003, notifications :8004, reports :8005, web console http://localhost:8000 (logs in .stack/log)"
}

supervise() {
  # Keep every service running: one that exits (or lingers as a zombie) is restarted after a
  # backoff that doubles from SUPERVISE_BACKOFF_S up to SUPERVISE_BACKOFF_MAX_S while it keeps
  # dying, and resets once it has stayed up SUPERVISE_STABLE_S. Ctrl-C stops supervising only.
  local base="${SUPERVISE_BACKOFF_S:-1}" max="${SUPERVISE_BACKOFF_MAX_S:-60}" stable="${SUPERVISE_STABLE_S:-60}"
  declare -A delay=() due=() since=()
  local s now
  log "supervising ${SERVICES[*]} (Ctrl-C stops supervising; ./dev stop stops the services)"
  trap 'log "supervisor stopped; services keep running"; exit 0' INT TERM
  for s in "${SERVICES[@]}"; do delay[$s]=$base; since[$s]=$SECONDS; done
  while true; do
    now=$SECONDS
    for s in "${SERVICES[@]}"; do
      if running "svc-$s"; then
        if (( now - ${since[$s]} >= stable )); then delay[$s]=$base; fi
        continue
      fi
      if [ -z "${due[$s]:-}" ]; then
        due[$s]=$((now + ${delay[$s]}))
        log "$s exited (pid $(cat "$STATE/run/svc-$s.pid" 2>/dev/null)); restarting in ${delay[$s]} s"
      elif (( now >= ${due[$s]} )); then
        start_bg "svc-$s" "$PY" -m "services.$s"
        log "$s restarted (pid $(cat "$STATE/run/svc-$s.pid"))"
        unset "due[$s]"
        since[$s]=$now
        delay[$s]=$(( ${delay[$s]} * 2 > max ? max : ${delay[$s]} * 2 ))
      fi
    done
    sleep 0.5
  done
}

stop_all() {
  for s in "${SERVICES[@]}"; do stop_bg "svc-$s"; done
  stop_bg smtp; stop_bg localstripe; stop_bg kafka
  if [ -f "$STATE/run/postgres.started" ]; then
    pg_ctlcluster "$PG_VERSION" main stop || true
    rm -f "$STATE/run/postgres.started"
  fi
}

status() {
  for n in kafka localstripe smtp "${SERVICES[@]/#/svc-}"; do
    if running "$n"; then echo "$n: running (pid $(cat "$STATE/run/$n.pid"))"
    elif [ -f "$STATE/run/$n.pid" ]; then echo "$n: DOWN (pid $(cat "$STATE/run/$n.pid") $( [ "$(proc_state "$(cat "$STATE/run/$n.pid")")" = Z ] && echo "is a zombie" || echo "exited"))"
    else echo "$n: stopped"; fi
  done
  pg_lsclusters
}

run_tests() {
  # Stop at the end only what this run started.
  # Global, not local: the EXIT trap runs after this function has returned.
  STARTED_BEFORE=$(ls "$STATE/run" 2>/dev/null | tr '\n' ' ')
  cleanup() {
    for f in "$STATE"/run/*.pid "$STATE"/run/postgres.started; do
      [ -e "$f" ] || continue
      local b; b=$(basename "$f")
      case " $STARTED_BEFORE " in *" $b "*) continue ;; esac
      case "$b" in
        postgres.started) pg_ctlcluster "$PG_VERSION" main stop || true; rm -f "$f" ;;
        *.pid) stop_bg "${b%.pid}" ;;
      esac
    done
  }
  trap cleanup EXIT
  infra_up
  log "tests"
  set +e
  # The tests set what they need: the dev sign-in that ./dev turns on for its services is not theirs.
  env -u WEB_DEV_SIGN_IN "$PY" -m pytest "$@"
  local rc=$?
  set -e
  if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; rc=1; fi
  return "$rc"
}

cmd="${1:-up}"; shift || true
case "$cmd" in
  infra) infra_up ;;
  up) infra_up; if [ "${1:-}" = --supervise ]; then start_missing; supervise; else services_up; fi ;;
  services) if [ "${1:-}" = --supervise ]; then start_missing; supervise; else services_up; fi ;;
  demo) infra_up; services_up; "$PY" -m scripts.demo "$@" ;;
  test) run_tests "$@" ;;
  stop) stop_all ;;
  status) status ;;
  *) echo "usage: ./dev demo|test|up [--supervise]|services [--supervise]|infra|stop|status" >&2; exit 2 ;;
esac
