#!/usr/bin/env bash
# The README's "Run it in the Airflow UI": the emulator and Airflow's components in the background,
# each in its own process group, stopped by pid.
#
#   scripts/airflow_local.sh start    start the emulator, api-server, scheduler, dag-processor, triggerer
#   scripts/airflow_local.sh status   which of them run (pid, log file)
#   scripts/airflow_local.sh stop     SIGTERM each process group, SIGKILL what is left after 20 s
#   scripts/airflow_local.sh env      the environment, as exports: eval "$(scripts/airflow_local.sh env)"
#
# State, logs and pids live in $AIRFLOW_HOME (default ./airflow-home); pids and component logs in
# $AIRFLOW_HOME/run. Ports: AIRFLOW_UI_PORT (8080), PUDDLE_PORT (50051). Needs `make venv` first.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME_DIR="${AIRFLOW_HOME:-$REPO/airflow-home}"
RUN="$HOME_DIR/run"
UI_PORT="${AIRFLOW_UI_PORT:-8080}"
PUDDLE_PORT="${PUDDLE_PORT:-50051}"
BIN="$REPO/.venv/bin"
COMPONENTS=(api-server scheduler dag-processor triggerer)

# A value generated once and kept in $RUN, so every component (and `env`) sees the same one.
kept() {
  local file="$RUN/$1"
  if [[ ! -s "$file" ]]; then
    mkdir -p "$RUN"
    (umask 077 && "$BIN/python" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' >"$file")
  fi
  cat "$file"
}

environment() {
  local api="http://127.0.0.1:$UI_PORT"
  cat <<EOF
export PATH="$BIN:\$PATH"
export AIRFLOW_HOME="$HOME_DIR"
export AIRFLOW__CORE__DAGS_FOLDER="$REPO/example_dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
export AIRFLOW__CORE__TEST_CONNECTION=Enabled
export AIRFLOW__CORE__FERNET_KEY="$(kept fernet_key)"
export AIRFLOW__API_AUTH__JWT_SECRET="$(kept jwt_secret)"
export AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$UI_PORT AIRFLOW__API__WORKERS=1
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="$api/execution/"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=10
export AIRFLOW__CORE__PARALLELISM=8  # LocalExecutor starts this many worker processes
export AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE=True
export AIRFLOW_CONN_PUDDLE_DEFAULT='{"conn_type": "puddle", "host": "http://127.0.0.1", "port": $PUDDLE_PORT, "login": "demo-key-id", "password": "demo-secret-key"}'
EOF
}

pid_of() { [[ -s "$RUN/$1.pid" ]] && cat "$RUN/$1.pid"; }
alive() { local pid; pid="$(pid_of "$1")" && kill -0 "$pid" 2>/dev/null; }

# Start "$@" as component $name in a new session (its pid is its process group id), log to $RUN/$name.log.
spawn() {
  local name="$1"
  shift
  setsid "$@" >"$RUN/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

wait_for() {  # wait_for WHAT SECONDS COMMAND...: poll COMMAND every 0.5 s
  local what="$1" limit="$2" waited=0
  shift 2
  until "$@" >/dev/null 2>&1; do
    if (( waited >= limit * 2 )); then
      echo "airflow_local: $what not ready after ${limit} s; see $RUN/*.log" >&2
      return 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
}

start() {
  [[ -x "$BIN/airflow" ]] || { echo "airflow_local: run 'make venv' first" >&2; exit 1; }
  for name in emulator "${COMPONENTS[@]}"; do
    if alive "$name"; then echo "airflow_local: $name already runs (pid $(pid_of "$name")); stop first" >&2; exit 1; fi
  done
  mkdir -p "$RUN"
  eval "$(environment)"
  spawn emulator "$BIN/puddle-emulator" --host 127.0.0.1 --port "$PUDDLE_PORT" --db "$HOME_DIR/puddle.sqlite"
  wait_for "the emulator" 30 grep -q "listening on" "$RUN/emulator.log"
  "$BIN/airflow" db migrate >"$RUN/db-migrate.log" 2>&1 || { echo "airflow_local: db migrate failed, see $RUN/db-migrate.log" >&2; stop; exit 1; }
  spawn api-server "$BIN/airflow" api-server
  # --skip-serve-logs: the log servers would listen on every interface; the api-server reads the files.
  spawn scheduler "$BIN/airflow" scheduler --skip-serve-logs
  spawn dag-processor "$BIN/airflow" dag-processor
  spawn triggerer "$BIN/airflow" triggerer --skip-serve-logs
  wait_for "the api-server" 120 "$BIN/python" -c \
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$UI_PORT/api/v2/monitor/health', timeout=2)"
  status
  echo "Airflow UI: http://127.0.0.1:$UI_PORT  (stop everything: $0 stop)"
}

status() {
  for name in emulator "${COMPONENTS[@]}"; do
    if alive "$name"; then state="runs, pid $(pid_of "$name")"; else state="not running"; fi
    printf '%-14s %-22s %s\n' "$name" "$state" "$RUN/$name.log"
  done
}

stop() {
  local name pid waited
  # The emulator last, so tasks and triggers still reach it while the components shut down.
  for name in "${COMPONENTS[@]}" emulator; do
    pid="$(pid_of "$name")" || continue
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for name in "${COMPONENTS[@]}" emulator; do
    pid="$(pid_of "$name")" || continue
    waited=0
    # The group, not only its leader: the scheduler's task processes and the triggerer's child.
    while kill -0 -- "-$pid" 2>/dev/null && (( waited < 40 )); do sleep 0.5; waited=$((waited + 1)); done
    if kill -0 -- "-$pid" 2>/dev/null; then
      echo "airflow_local: $name (process group $pid) ignored SIGTERM for 20 s; SIGKILL" >&2
      kill -KILL -- "-$pid" 2>/dev/null || true
      waited=0  # a SIGKILLed group is gone only once its processes have died and been reaped
      while kill -0 -- "-$pid" 2>/dev/null && (( waited < 40 )); do sleep 0.25; waited=$((waited + 1)); done
    fi
    rm -f "$RUN/$name.pid"
    echo "stopped $name (process group $pid)"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) environment ;;
  *) echo "usage: $0 start|status|stop|env" >&2; exit 2 ;;
esac
