#!/usr/bin/env bash
# The partner-stream example end to end on this machine: a tansu broker on 127.0.0.1:19092
# (scripts/services.sh installs it), the two topics, the 3,000 applications of
# examples/member_features (30 malformed) produced keyed by member, then the stream (until
# idle) and a backfill of the same topic, whose rows are compared.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf out   # the broker below starts empty: offsets checkpointed by an earlier run mean nothing
root=../..
export KAFKA_BROKERS=127.0.0.1:19092 PIPE_HMAC_KEY=${PIPE_HMAC_KEY:-demo-key-not-a-secret}
tansu broker --storage-engine memory://tansu/ --listener-url tcp://$KAFKA_BROKERS \
  --advertised-listener-url tcp://$KAFKA_BROKERS >/tmp/partner_stream_tansu.log 2>&1 &
broker=$!
trap 'kill $broker' EXIT
sleep 2
tansu topic create loan-applications --broker tcp://$KAFKA_BROKERS --partitions 4
tansu topic create member-daily --broker tcp://$KAFKA_BROKERS --partitions 2
cargo run -q --manifest-path $root/Cargo.toml -p pipe-tests --example kafka_produce -- \
  $KAFKA_BROKERS loan-applications $root/examples/member_features/data/applications.jsonl
pipec() { cargo run -q --manifest-path $root/Cargo.toml -p pipe-compiler --bin pipec -- "$@"; }
pipec run pipeline.pipe -- --mode stream --exit-when-idle 2s --state-dir out/state \
  --sink features=out/stream/member_daily --sink arrival_log=out/stream/arrivals
pipec run pipeline.pipe -- --sink features=out/batch/member_daily --sink arrival_log=out/batch/arrivals
diff <(cat out/stream/member_daily/*.jsonl | sort) <(cat out/batch/member_daily/*.jsonl | sort) \
  && echo "stream and backfill wrote the same member_daily rows"
