#!/usr/bin/env bash
# bench/compression.sh -- index size and read cost of fractal leaf compression.
#
#   bash bench/compression.sh [--rows N] [--secs S]
#
# Four data sets (random bigint; timestamps in insert order; text keys with
# shared prefixes; a 3-column key), each loaded by inserts (batches of 1000
# rows) into three identical tables indexed with btree (deduplication on,
# the PostgreSQL default), fractal with compression = none, and fractal with
# compression = zstd.  Reports each index's size, and point-lookup and
# 100-row range-scan throughput (pgbench, 1 client) through each index, in
# one run on one throwaway cluster.  Output: bench/results/compression-<ts>.txt
# and bench/results/compression-latest.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROWS=1000000
SECS=10
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS=$2; shift 2;;
    --secs) SECS=$2; shift 2;;
    -h|--help) sed -n '2,14p' "$0"; exit 0;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done

# shellcheck source=../test/cluster.sh
source test/cluster.sh
trap fr_cluster_cleanup_all EXIT
fr_cluster_start zbench 54711 "shared_buffers = 512MB" "shared_preload_libraries = 'fractal'" \
  "max_wal_size = 8GB" "synchronous_commit = off" "autovacuum = off" >/dev/null
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -At)
"${PSQL[@]}" -c "CREATE EXTENSION fractal"

ts=$(date +%Y%m%d-%H%M%S)
mkdir -p bench/results
out=bench/results/compression-$ts.txt
work=$(mktemp -d)
chmod 755 "$work"

# name | column definitions | index columns | value expression over g | lookup key expression | range key expression
DATASETS=(
  "random_bigint|k int8|k|(random() * 1e15)::int8|(SELECT k FROM %T WHERE ctid = '(0,1)')|k"
  "timestamps|k timestamptz|k|'2026-01-01'::timestamptz + g * interval '10 ms'|k|k"
  "text_prefixes|k text|k|'customer/' || (g % 1000) || '/order/' || lpad(g::text, 10, '0')|k|k"
  "three_columns|r int4, d int4, k timestamptz|r, d, k|(g % 10), ((g / 10) % 1000), '2026-01-01'::timestamptz + g * interval '1 s'|k|r, d, k"
)

{
echo "fractal compression benchmark  $(date -Is)"
echo "rows per data set: $ROWS (inserted in batches of 1000), shared_buffers 512MB (everything in memory)"
echo "postgres: $(postgres --version 2>/dev/null || /usr/lib/postgresql/15/bin/postgres --version)"
echo
printf '%-15s %-14s %12s %10s %12s %12s\n' dataset index size_MB vs_btree point_tps range100_tps
} | tee "$out"

for ds in "${DATASETS[@]}"; do
  IFS='|' read -r name cols icols expr _ _ <<<"$ds"
  for m in btree none zstd; do
    t="z_${name}_$m"
    case $m in
      btree) using="btree ($icols)";;
      none) using="fractal ($icols)";;
      zstd) using="fractal ($icols) WITH (compression = zstd)";;
    esac
    "${PSQL[@]}" -c "CREATE TABLE $t (id bigserial, $cols, pad text)" \
                 -c "CREATE INDEX ${t}_i ON $t USING $using"
  done
  # load the same rows into the three tables, 1000 rows per transaction
  for ((lo = 1; lo <= ROWS; lo += 100000)); do
    hi=$((lo + 99999)); [ $hi -gt "$ROWS" ] && hi=$ROWS
    collist=$(echo "$cols" | sed -E 's/ [a-z0-9]+//g')
    valexprs=$(echo "$expr")
    "${PSQL[@]}" -c "CREATE TEMP TABLE src AS SELECT g, $valexprs FROM generate_series($lo, $hi) g" \
      -c "DO \$\$ DECLARE b int; BEGIN
            FOR b IN 0..$(( (hi - lo) / 1000 )) LOOP
              INSERT INTO z_${name}_btree ($collist) SELECT $collist FROM (SELECT * FROM src OFFSET b * 1000 LIMIT 1000) s;
              INSERT INTO z_${name}_none ($collist) SELECT $collist FROM (SELECT * FROM src OFFSET b * 1000 LIMIT 1000) s;
              INSERT INTO z_${name}_zstd ($collist) SELECT $collist FROM (SELECT * FROM src OFFSET b * 1000 LIMIT 1000) s;
              COMMIT;
            END LOOP; END \$\$" 2>/dev/null || true
  done
  "${PSQL[@]}" -c "VACUUM ANALYZE z_${name}_btree, z_${name}_none, z_${name}_zstd"
  bsize=$("${PSQL[@]}" -c "SELECT pg_relation_size('z_${name}_btree_i')")
  for m in btree none zstd; do
    t="z_${name}_$m"
    size=$("${PSQL[@]}" -c "SELECT pg_relation_size('${t}_i')")
    # sample keys for lookups
    "${PSQL[@]}" -c "DROP TABLE IF EXISTS keys_$t" \
      -c "CREATE TABLE keys_$t AS SELECT row_number() OVER () AS i, $(echo "$icols") FROM (SELECT * FROM $t TABLESAMPLE SYSTEM (1) LIMIT 10000) s"
    nkeys=$("${PSQL[@]}" -c "SELECT count(*) FROM keys_$t")
    lastcol=$(echo "$icols" | awk -F', ' '{print $NF}')
    where=$(echo "$icols" | awk -F', ' '{for (i = 1; i <= NF; i++) printf "%s%s = kk.%s", (i > 1 ? " AND " : ""), $i, $i}')
    cat >"$work/point.sql" <<SQL
\set i random(1, $nkeys)
SELECT count(*) FROM $t t, keys_$t kk WHERE kk.i = :i AND $(echo "$where" | sed -E 's/(^| AND )/\1t./g');
SQL
    cat >"$work/range.sql" <<SQL
\set i random(1, $nkeys)
SELECT count(*) FROM (SELECT 1 FROM $t WHERE ($icols) >= (SELECT $icols FROM keys_$t WHERE i = :i) ORDER BY $icols LIMIT 100) s;
SQL
    "${PSQL[@]}" -c "SET enable_seqscan = off; SET enable_bitmapscan = off; EXPLAIN (COSTS OFF) SELECT 1 FROM $t WHERE $lastcol >= (SELECT $lastcol FROM keys_$t WHERE i = 1) ORDER BY $icols LIMIT 100" >"$work/plan_$t.txt"
    chmod 644 "$work"/*.sql
    ptps=$(PGOPTIONS="-c enable_seqscan=off -c enable_bitmapscan=off" pgbench -n -T "$SECS" -f "$work/point.sql" 2>/dev/null | awk '/^tps/ {printf "%.0f", $3}')
    rtps=$(PGOPTIONS="-c enable_seqscan=off -c enable_bitmapscan=off" pgbench -n -T "$SECS" -f "$work/range.sql" 2>/dev/null | awk '/^tps/ {printf "%.0f", $3}')
    printf '%-15s %-14s %12.1f %10.2f %12s %12s\n' "$name" "$m" "$(echo "$size / 1048576" | bc -l)" \
      "$(echo "$size / $bsize" | bc -l)" "${ptps:-?}" "${rtps:-?}" | tee -a "$out"
  done
  if [ "$name" = random_bigint ]; then :; fi
  "${PSQL[@]}" -c "SELECT 'zstd ratio reported by fractal_stats: ' || round(compression_ratio::numeric, 2) FROM fractal_stats('z_${name}_zstd_i')" | tee -a "$out"
done
cp "$out" bench/results/compression-latest.txt
echo "written: $out"
