#!/usr/bin/env bash
# The README's test command: installs what the tests need (scripts/services.sh), compiles the
# tests while the Kafka broker and the S3 server build, then runs every test of the workspace.
# The Kafka, PostgreSQL and object store tests fail, instead of skipping, when their servers are
# missing, the picture test when Graphviz is, and the install test when it cannot hide the
# checkout in a mount namespace (it needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh --start
built=$(mktemp)
cargo test --workspace --no-run 2>&1 | tee "$built"
# The tests build their pipelines with `pipec --quick` (the pipeline's own code unoptimized, the
# runtime optimized): each builds in seconds instead of tens of seconds. And with every runtime
# feature: pipelines with different connectors then share one compiled runtime, where each set
# of connectors would compile its own (seven sets; a new one took 3 minutes here). The install test
# builds as users do: the default profile, the features its pipeline uses, its own cache.
export PIPE_QUICK=1 PIPE_RUNTIME_FEATURES=all
# And into this workspace's target directory, against this checkout's runtime: a pipeline's
# dependencies then have the versions, features and profile settings of the ones
# `cargo test --no-run` just compiled, and cargo reuses them — only the runtime crate itself is
# compiled again (optimized), once for the whole suite.
export PIPE_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" PIPE_RUNTIME_DIR="$PWD/runtime"
# Four tests at a time on any machine: much of a test's time is spent waiting — on the one cargo
# that may build in the shared target directory at a time, on a server starting, on a stream
# to go idle — and at two (cargo's default here) a third of the machine sat idle. On this 2-core
# machine the integration tests took 300 s at two with the runtime already compiled, 280 s at
# four including the runtime's compile (about 45 s).
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-4}"
export PIPE_REQUIRE_KAFKA=1 PIPE_REQUIRE_POSTGRES=1 PIPE_REQUIRE_S3=1 PIPE_REQUIRE_GRAPHVIZ=1 PIPE_REQUIRE_UNSHARE=1 PATH="$HOME/.cargo/bin:$PATH"
# The install test compiles a runtime of its own, as a user's first build does (about 2 minutes
# of compiling here), so it starts now and runs alongside the rest — the servers' installs, then
# tests that spend much of their time waiting on servers and pipelines. It is started from the
# binary `cargo test` built: another cargo command would select other packages, resolve other
# features and compile the compiler again. With arguments for cargo, everything runs in order.
install_test=an_installed_pipec_builds_pipelines_with_the_source_tree_out_of_reach
cli=$(sed -n 's/^ *Executable tests\/cli\.rs (\(.*\))$/\1/p' "$built")
rm -f "$built"
case "$cli" in "" | /*) ;; *) cli="$PWD/$cli" ;; esac
if [ $# -eq 0 ] && [ -n "$cli" ]; then
  install_log=$(mktemp)
  (cd compiler && "$cli" --exact "$install_test") > "$install_log" 2>&1 &
  install_pid=$!
  status=0
  scripts/services.sh --wait && cargo test --workspace -- --skip "$install_test" || status=$?
  install_status=0
  wait "$install_pid" || install_status=$?
  echo "The install test, run alongside the others:"
  cat "$install_log"
  rm -f "$install_log"
  [ "$status" -eq 0 ] && [ "$install_status" -eq 0 ] || exit 1
else
  scripts/services.sh --wait
  cargo test --workspace "$@"
fi
# The editor grammar, tokenized as VS Code does (editors/vscode/, Node.js and npm).
if command -v npm >/dev/null 2>&1; then
  (cd editors/vscode && npm ci --no-audit --no-fund --loglevel=error && npm test)
else
  echo "skipping the editor grammar test: npm is not installed"
fi
