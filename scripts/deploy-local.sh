#!/usr/bin/env bash
# N stateless `qabot serve` workers behind haproxy, on loopback, on one machine (for tests and benchmarks).
#
#   scripts/deploy-local.sh start [N] [--telegram]
#        start N workers (default 2) and haproxy; with --telegram also `qabot telegram` in webhook mode, forwarding
#        every question to haproxy. Prints QABOT_WEBHOOK=http://… (with --telegram) and, as its last line,
#        QABOT_URL=http://…
#   scripts/deploy-local.sh status      exit 0 and print QABOT_URL=… when haproxy runs, exit 3 when it does not
#   scripts/deploy-local.sh stop        stop the bot, haproxy and the workers (SIGTERM: work in flight is finished)
#
#   export "$(scripts/dev-postgres.sh start | tail -n 1)"   # the shared store
#   QABOT_CONFIG=my-config.yaml scripts/deploy-local.sh start 4
#   TELEGRAM_BOT_TOKEN=… scripts/deploy-local.sh start 2 --telegram
#
# Layout (README "Deployment"):
#
#   Telegram ─► (TLS proxy) ─► qabot telegram 127.0.0.1:$QABOT_BOT_PORT (webhook; no model) ─┐ POST /ask
#   HTTP clients ──────────────────────────────────────────────────────────────────────────┴─► haproxy
#        127.0.0.1:$QABOT_LB_PORT (round robin, GET /health checks)
#        ─► qabot serve 127.0.0.1:$QABOT_LB_PORT+1 … +N ─► PostgreSQL + pgvector (chunks, version, conversations)
#
# The workers keep nothing a follow-up needs in memory: with document_store.backend: pgvector the chunks and
# the conversations are in PostgreSQL (QABOT_PG_DSN), so any worker answers any request. With the faiss
# backend they share one index folder and each keeps its own conversations: use one worker then.
#
# Environment: QABOT_DEPLOY_DIR (default /tmp/qabot-deploy: config, pids, logs), QABOT_LB_PORT (8380),
# QABOT_CONFIG (the workers' config; default config.yaml), QABOT_PG_DSN and QABOT_ADMIN_TOKEN (passed to the
# workers, never written to disk), QABOT_START_TIMEOUT (seconds for each worker's /health, default 300).
# With --telegram: TELEGRAM_BOT_TOKEN (required; passed in the environment, never written to disk),
# TELEGRAM_BASE_URL (the Bot API; default Telegram's, an emulator in tests), QABOT_BOT_PORT (the webhook listen
# port, default 8443), QABOT_WEBHOOK_URL (the URL Telegram posts to, default http://127.0.0.1:$QABOT_BOT_PORT/telegram;
# in production the https URL of a TLS proxy in front of that port). The bot's config is written to
# $QABOT_DEPLOY_DIR/telegram.yaml (webhook mode, answer_url = haproxy, votes in $QABOT_DEPLOY_DIR), or
# QABOT_BOT_CONFIG names your own (its answer_url is set to haproxy through QABOT_SERVE_URL).
# haproxy is installed from Debian when missing (needs root).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${QABOT_DEPLOY_DIR:-/tmp/qabot-deploy}
LB_PORT=${QABOT_LB_PORT:-8380}
BOT_PORT=${QABOT_BOT_PORT:-8443}
WEBHOOK_URL=${QABOT_WEBHOOK_URL:-http://127.0.0.1:$BOT_PORT/telegram}
START_TIMEOUT=${QABOT_START_TIMEOUT:-300}
PYTHON=$ROOT/.venv/bin/python  # `python -m bot.cli` from $ROOT: this checkout's bot package, whatever is installed

say() { echo "deploy-local: $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

ensure_haproxy() {
    command -v haproxy >/dev/null && return
    [[ $EUID -eq 0 ]] || die "haproxy is missing and installing it needs root (apt-get install haproxy)"
    say "installing haproxy"
    mkdir -p "$DIR"
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy; } \
        >>"$DIR/install.log" 2>&1 || die "cannot install haproxy; see $DIR/install.log"
}

wait_healthy() {  # port pid log
    local deadline=$((SECONDS + START_TIMEOUT))
    until curl -fsS -o /dev/null "http://127.0.0.1:$1/health" 2>/dev/null; do
        kill -0 "$2" 2>/dev/null || die "the worker on port $1 exited: $(tail -n 1 "$3")"
        ((SECONDS < deadline)) || die "the worker on port $1 is not healthy after ${START_TIMEOUT}s; see $3"
        sleep 0.5
    done
}

wait_listening() {  # port pid log: any HTTP answer (the webhook path only takes POST) means it listens
    local deadline=$((SECONDS + START_TIMEOUT))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/" 2>/dev/null) != 000 ]]; do
        kill -0 "$2" 2>/dev/null || die "the Telegram bot exited: $(tail -n 1 "$3")"
        ((SECONDS < deadline)) || die "the Telegram bot is not listening on port $1 after ${START_TIMEOUT}s; see $3"
        sleep 0.3
    done
}

start_telegram() {  # after haproxy: the bot forwards to it from its first update on (start checked the token)
    local config=${QABOT_BOT_CONFIG:-$DIR/telegram.yaml}
    if [[ -z ${QABOT_BOT_CONFIG:-} ]]; then
        {
            echo "telegram:"
            echo "  mode: webhook"
            echo "  webhook_url: \"$WEBHOOK_URL\""
            echo "  webhook_listen: 127.0.0.1"
            echo "  webhook_port: $BOT_PORT"
            echo "  answer_url: \"http://127.0.0.1:$LB_PORT\""
            echo "  feedback_file: \"$DIR/votes.jsonl\""
        } >"$config"
    fi
    say "starting the Telegram bot (webhook on 127.0.0.1:$BOT_PORT, answers from haproxy)"
    (cd "$ROOT" && QABOT_SERVE_URL="http://127.0.0.1:$LB_PORT" exec setsid "$PYTHON" -m bot.cli telegram \
        --config "$config") >"$DIR/telegram.log" 2>&1 &
    echo $! >"$DIR/telegram.pid"
    wait_listening "$BOT_PORT" "$(cat "$DIR/telegram.pid")" "$DIR/telegram.log"
    echo "QABOT_WEBHOOK=http://127.0.0.1:$BOT_PORT (Telegram posts to $WEBHOOK_URL)"
}

start() {
    local workers=2 telegram=0 arg
    for arg in "$@"; do
        case $arg in
            --telegram) telegram=1 ;;
            *) workers=$arg ;;
        esac
    done
    [[ $workers =~ ^[1-9][0-9]*$ ]] || die "the number of workers must be a positive integer, not '$workers'"
    if ((telegram)) && [[ -z ${TELEGRAM_BOT_TOKEN:-} ]]; then
        die "--telegram needs TELEGRAM_BOT_TOKEN in the environment"
    fi
    if running "$DIR/haproxy.pid"; then
        say "already running (stop it first to change the number of workers)"
        echo "QABOT_URL=http://127.0.0.1:$LB_PORT"
        return
    fi
    ensure_haproxy
    [[ -x $PYTHON ]] || die "$PYTHON is missing; run bash setup.sh first"
    mkdir -p "$DIR"
    rm -f "$DIR"/worker-*.pid
    local config_args=()
    [[ -n ${QABOT_CONFIG:-} ]] && config_args=(--config "$QABOT_CONFIG")
    {
        echo "global"
        echo "    maxconn 4096"
        echo "defaults"
        echo "    mode http"
        echo "    timeout connect 5s"
        echo "    timeout client 120s"
        echo "    timeout server 120s"
        echo "    option httpchk GET /health"
        echo "frontend qabot"
        echo "    bind 127.0.0.1:$LB_PORT"
        echo "    default_backend workers"
        echo "backend workers"
        echo "    balance roundrobin"
    } >"$DIR/haproxy.cfg"
    for ((i = 1; i <= workers; i++)); do
        local port=$((LB_PORT + i))
        say "starting worker $i on 127.0.0.1:$port"
        (cd "$ROOT" && exec setsid "$PYTHON" -m bot.cli serve --host 127.0.0.1 --port "$port" "${config_args[@]}") >"$DIR/worker-$i.log" 2>&1 &
        echo $! >"$DIR/worker-$i.pid"
        echo "    server w$i 127.0.0.1:$port check inter 2s" >>"$DIR/haproxy.cfg"
    done
    for ((i = 1; i <= workers; i++)); do
        wait_healthy $((LB_PORT + i)) "$(cat "$DIR/worker-$i.pid")" "$DIR/worker-$i.log"
    done
    haproxy -c -q -f "$DIR/haproxy.cfg" || die "haproxy rejects $DIR/haproxy.cfg"
    haproxy -D -f "$DIR/haproxy.cfg" -p "$DIR/haproxy.pid" || die "haproxy did not start"
    say "$workers worker(s) behind haproxy on 127.0.0.1:$LB_PORT; logs in $DIR"
    if ((telegram)); then start_telegram; fi
    echo "QABOT_URL=http://127.0.0.1:$LB_PORT"
}

stop() {
    local pidfile
    for pidfile in "$DIR/telegram.pid" "$DIR/haproxy.pid" "$DIR"/worker-*.pid; do  # the front first
        [[ -f $pidfile ]] || continue
        if running "$pidfile"; then
            kill -TERM "$(cat "$pidfile")"
            for _ in $(seq 1 70); do running "$pidfile" || break; sleep 0.5; done
        fi
        rm -f "$pidfile"
    done
    say "stopped"
}

case ${1:-} in
    start) shift; start "$@" ;;
    stop) stop ;;
    status)
        running "$DIR/haproxy.pid" || { say "not running"; exit 3; }
        running "$DIR/telegram.pid" && echo "QABOT_WEBHOOK=http://127.0.0.1:$BOT_PORT"
        echo "QABOT_URL=http://127.0.0.1:$LB_PORT"
        ;;
    *) die "usage: $0 start [N] [--telegram] | status | stop" ;;
esac
