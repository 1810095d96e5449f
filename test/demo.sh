#!/usr/bin/env bash
# test/demo.sh -- show the fractal index at work on a throwaway cluster.
# Needs the extension to be installed (make install); setup.sh does that.
#
#   bash test/demo.sh            # 200k rows
#   DEMO_ROWS=50000 bash test/demo.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/cluster.sh
source "$HERE/cluster.sh"

ROWS=${DEMO_ROWS:-200000}
BATCHES=4
PER_BATCH=$(( (ROWS + BATCHES - 1) / BATCHES ))
PORT=${FRACTAL_DEMO_PORT:-54616}

trap fr_cluster_cleanup_all EXIT

if [ -t 1 ]; then B=$'\033[1m' C=$'\033[36m' N=$'\033[0m'; else B='' C='' N=''; fi
step() { printf '\n%s=== %s%s\n' "$B" "$*" "$N"; }
sql()  { psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
show() {   # echo a query, then run it
    printf '\n%sdemo=# %s;%s\n' "$C" "$1" "$N"
    sql -c "$@"
}
# show() with sequential scans disabled, so the planner must use the index
show_idx() {
    printf '\n%s(enable_seqscan = off)%s' "$C" "$N"
    PGOPTIONS="-c enable_seqscan=off" show "$1"
}

step "starting a throwaway PostgreSQL 15 cluster (port $PORT)"
fr_cluster_start demo "$PORT" "shared_buffers = 128MB"
echo "cluster in $FR_CLUSTER_DIR"

step "creating the extension, a table and a fractal index"
show "CREATE EXTENSION fractal"
show "CREATE TABLE demo (id bigint, payload text)"
show "CREATE INDEX demo_idx ON demo USING fractal (id)"

step "inserting $ROWS random rows in $BATCHES batches"
for b in $(seq 1 $BATCHES); do
    start=$(date +%s.%N)
    sql -q -c "INSERT INTO demo
               SELECT (random() * 1e9)::bigint, md5(g::text)
               FROM generate_series(1, $PER_BATCH) g"
    end=$(date +%s.%N)
    awk -v b="$b" -v n="$BATCHES" -v r="$PER_BATCH" -v s="$start" -v e="$end" \
        'BEGIN { printf "batch %d/%d: %d rows in %.2fs\n", b, n, r, e - s }'
done
sql -q -c "INSERT INTO demo VALUES (42, 'the answer')"
show "ANALYZE demo"
show "SELECT pg_size_pretty(pg_relation_size('demo')) AS table_size,
             pg_size_pretty(pg_relation_size('demo_idx')) AS index_size"

step "queries"
show_idx "EXPLAIN (COSTS OFF) SELECT * FROM demo WHERE id = 42"
show_idx "SELECT * FROM demo WHERE id = 42"
RANGE_Q="SELECT id, payload FROM demo WHERE id BETWEEN 100000000 AND 200000000 ORDER BY id LIMIT 5"
show_idx "EXPLAIN (COSTS OFF) $RANGE_Q"
show_idx "$RANGE_Q"

step "index statistics"
printf '\n%sdemo=# \\x on%s' "$C" "$N"
show "SELECT * FROM fractal_stats('demo_idx')" -x
show "SELECT * FROM fractal_level_stats('demo_idx')"

step "consistency check: count via the index vs. via a sequential scan"
q="SELECT count(*) FROM demo WHERE id BETWEEN 250000000 AND 750000000"
echo "query: $q"
via_idx=$(PGOPTIONS="-c enable_seqscan=off -c enable_bitmapscan=off" sql -At -c "$q")
via_bitmap=$(PGOPTIONS="-c enable_seqscan=off -c enable_indexscan=off" sql -At -c "$q")
via_seq=$(PGOPTIONS="-c enable_indexscan=off -c enable_bitmapscan=off" sql -At -c "$q")
echo "index scan:  $via_idx"
echo "bitmap scan: $via_bitmap"
echo "seq scan:    $via_seq"
status=0
if [ "$via_idx" = "$via_seq" ] && [ "$via_bitmap" = "$via_seq" ]; then
    echo "OK: all three agree"
else
    echo "MISMATCH between index and sequential scan!" >&2
    status=1
fi

step "stopping and removing the cluster"
fr_cluster_stop demo
echo "done."
exit $status
