#!/usr/bin/env bash
# What the tests need besides a Rust toolchain, installed once on a fresh machine:
# - cmake and libcurl's headers, to build librdkafka (the Kafka client the runtime's `kafka`
#   feature compiles from its bundled sources);
# - Graphviz, whose `dot` renders `pipec graph --format svg` (the README's picture is checked
#   against it);
# - PostgreSQL (Debian's, 15) and Redis: the feature-store tests start their own throwaway
#   servers on 127.0.0.1 (PostgreSQL's `initdb` and `pg_ctl` as the `postgres` user when run as
#   root, `redis-server` without persistence);
# - tansu 0.6.0, a Kafka-protocol broker the Kafka tests start on 127.0.0.1, and s3s-fs 0.14.1,
#   an S3-protocol server over a folder the object store tests start on 127.0.0.1. Building
#   tansu takes 15–30 minutes cold, s3s-fs about 2, so they are built in the background
#   (`--start`) while the workspace compiles, and `--wait` waits for them; installed ones are
#   reused.
set -euo pipefail
cd "$(dirname "$0")/.."
log=target/tansu-install.log
pidfile=target/tansu-install.pid
mkdir -p target

have() { command -v "$1" >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/$1" ]; }
have_tansu() { have tansu && have s3s-fs; }

start() {
  local curl=no
  if [ -e /usr/include/curl/curl.h ] || ls /usr/include/*/curl/curl.h >/dev/null 2>&1; then curl=yes; fi
  local pg=no
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null 2>&1; then pg=yes; fi
  if ! command -v cmake >/dev/null 2>&1 || [ "$curl" = no ] || ! command -v dot >/dev/null 2>&1 || [ "$pg" = no ]; then
    local packages="cmake libcurl4-openssl-dev graphviz postgresql redis-server"
    if [ "$(id -u)" = 0 ]; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages) >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
    fi
  fi
  if ! have_tansu && ! { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }; then
    echo "building the tansu Kafka broker and the s3s-fs S3 server in the background (log: $log)"
    # s3s-fs first (minutes), then tansu; one after the other, so they share the machine's
    # cores with the workspace's build rather than with each other.
    nohup sh -c '{ have() { command -v "$1" >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/$1" ]; }
      have s3s-fs || cargo install s3s-fs --version 0.14.1 --locked --features binary || exit 1
      have tansu || cargo install tansu --version 0.6.0 --locked --features dynostore; }' >"$log" 2>&1 &
    echo $! >"$pidfile"
  fi
}

wait_for() {
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    while kill -0 "$pid" 2>/dev/null; do sleep 5; done
    rm -f "$pidfile"
  fi
  if ! have_tansu; then
    echo "tansu or s3s-fs did not install; see $log" >&2
    tail -20 "$log" >&2 || true
    exit 1
  fi
}

case "${1:-}" in
  --start) start ;;
  --wait) start; wait_for ;;
  *) echo "usage: scripts/services.sh --start | --wait" >&2; exit 2 ;;
esac
