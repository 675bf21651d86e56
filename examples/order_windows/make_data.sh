#!/bin/sh
# Regenerates data/orders.jsonl: the orders of 1–14 January 2015 from the shared pizzaplace
# file (../../../shared/data/pizzaplace_orders.derived.json, see its SOURCES.md), unchanged.
set -eu
cd "$(dirname "$0")"
grep -E '"ts": "2015-01-(0[1-9]|1[0-4])T' ../../../shared/data/pizzaplace_orders.derived.json > data/orders.jsonl
