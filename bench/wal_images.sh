#!/usr/bin/env bash
# bench/wal_images.sh -- in-memory insert cost of fractal.wal_image_compression.
#
#   bash bench/wal_images.sh [--secs S] [--repeats N] [--settings "off auto zstd lz4"]
#
# One table per setting, each with one fractal index on a random int8 key,
# loaded by 1,000-row transactions, one client; the settings' scripts are
# interleaved in one pgbench run (each transaction picks a script at
# random and sets fractal.wal_image_compression first), so every setting
# sees the machine at the same moments and the tables grow alike.  Fresh
# tables and a CHECKPOINT before each of N repeats of S seconds (default 2
# of 45).  Prints each setting's mean transaction latency and its ratio to
# the first setting's.  Everything stays in memory (shared_buffers 1GB),
# where the images logged are nearly all of new or rewritten pages (splits,
# new chain and filter pages).  Asserts nothing; output also in
# bench/results/wal_images-<timestamp>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=45
REPEATS=2
SETTINGS="off auto zstd lz4"
while [ $# -gt 0 ]; do
  case $1 in
    --secs) SECS=$2; shift 2;;
    --repeats) REPEATS=$2; shift 2;;
    --settings) SETTINGS=$2; shift 2;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done

# shellcheck source=../test/cluster.sh
source test/cluster.sh
trap fr_cluster_cleanup_all EXIT
fr_cluster_start wimg 54712 "shared_buffers = 1GB" "shared_preload_libraries = 'fractal'" \
  "max_wal_size = 8GB" "synchronous_commit = off" "autovacuum = off" >/dev/null
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -At)
"${PSQL[@]}" -c "CREATE EXTENSION fractal"

work=$(mktemp -d)
chmod 755 "$work"
mkdir -p bench/results
out=bench/results/wal_images-$(date +%Y%m%d-%H%M%S).txt
args=()
for s in $SETTINGS; do
  printf 'SET fractal.wal_image_compression = %s;\nINSERT INTO w_%s SELECT (random() * 9e18)::int8 FROM generate_series(1, 1000);\n' \
    "$s" "$s" > "$work/w_$s.sql"
  args+=(-f "$work/w_$s.sql")
done

{
  echo "fractal WAL image compression, in memory  $(date -Is)"
  echo "one int8 fractal index per setting, 1000-row transactions, 1 client, settings interleaved; $REPEATS x ${SECS}s"
  echo "postgres: $(/usr/lib/postgresql/15/bin/postgres --version)"
} | tee "$out"
for r in $(seq 1 "$REPEATS"); do
  for s in $SETTINGS; do
    "${PSQL[@]}" -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS w_$s" -c "CREATE TABLE w_$s (k int8)" \
                 -c "CREATE INDEX ON w_$s USING fractal (k)"
  done
  "${PSQL[@]}" -c "CHECKPOINT"
  pgbench -n "${args[@]}" -c 1 -T "$SECS" > "$work/pgbench.out" 2>&1
  # per script: "SQL script i: <file>" then " - latency average = x ms"
  awk -v r="$r" '
    /^SQL script/ { n = $NF; sub(/.*w_/, "", n); sub(/\.sql$/, "", n) }
    /latency average/ && n != "" { lat[++k] = $(NF - 1); name[k] = n; n = "" }
    END {
      printf "repeat %d:", r
      for (i = 1; i <= k; i++) printf "  %s %.3f ms (%.3fx)", name[i], lat[i], lat[i] / lat[1]
      printf "\n"
    }' "$work/pgbench.out" | tee -a "$out"
done
echo "ratios: latency over the first setting's (lower is faster)" | tee -a "$out"
