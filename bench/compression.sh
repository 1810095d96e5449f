#!/usr/bin/env bash
# bench/compression.sh -- index size and read cost of fractal leaf compression.
#
#   bash bench/compression.sh [--rows N] [--secs S] [--paired-rounds R]
#
# Four data sets (random bigint; timestamps in insert order; text keys with
# shared prefixes; a 3-column key), each loaded by inserts (1000 rows per
# transaction) into three identical tables indexed with btree
# (deduplication on, the PostgreSQL default), fractal with
# compression = none, and fractal with compression = zstd.  Reports each
# index's size, and point-lookup and 100-row range-scan throughput (pgbench,
# one client, index scans forced) through each index, and each load's
# insert rate (rows/s; the three loads interleaved batch by batch, each
# batch timed), in one run on one
# throwaway cluster with everything in memory.  Then R (default 3) paired
# rounds per read workload: compression = none's script and zstd's
# interleaved in one pgbench run, the ratio being none's mean latency over
# zstd's (bench/paired.sh), less noisy than the ratio of two runs.  Output:
# bench/results/compression-<timestamp>.txt and
# bench/results/compression-latest.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROWS=1000000
SECS=10
PAIRED_ROUNDS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS=$2; shift 2;;
    --secs) SECS=$2; shift 2;;
    --paired-rounds) PAIRED_ROUNDS=$2; shift 2;;
    -h|--help) sed -n '2,19p' "$0"; exit 0;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done

# shellcheck source=../test/cluster.sh
source test/cluster.sh
# shellcheck source=paired.sh
source bench/paired.sh
trap fr_cluster_cleanup_all EXIT
fr_cluster_start zbench 54711 "shared_buffers = 1GB" "shared_preload_libraries = 'fractal'" \
  "max_wal_size = 8GB" "synchronous_commit = off" "autovacuum = off" >/dev/null
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -At)
"${PSQL[@]}" -c "CREATE EXTENSION fractal"

mkdir -p bench/results
out=bench/results/compression-$(date +%Y%m%d-%H%M%S).txt
work=$(mktemp -d)
chmod 755 "$work"

# Each data set: name ; columns ; index columns ; select list over g (one
# alias per column) ; point-lookup condition ; range condition + order.
# In the conditions, t is the table under test and :x.col a column of a
# sampled existing row.
DATASETS=(
  "random_bigint;k int8;k;(random() * 1e15)::int8 AS k;t.k = :x.k;t.k >= :x.k ORDER BY t.k"
  "timestamps;k timestamptz;k;'2026-01-01'::timestamptz + g * interval '10 ms' AS k;t.k = :x.k;t.k >= :x.k ORDER BY t.k"
  "text_prefixes;k text;k;'customer/' || (g % 1000) || '/order/' || lpad(g::text, 10, '0') AS k;t.k = :x.k;t.k >= :x.k ORDER BY t.k"
  "three_columns;r int4, d int4, k timestamptz;r, d, k;g % 10 AS r, (g / 10) % 1000 AS d, '2026-01-01'::timestamptz + g * interval '1 s' AS k;t.r = :x.r AND t.d = :x.d AND t.k = :x.k;t.r = :x.r AND t.d = :x.d AND t.k >= :x.k ORDER BY t.r, t.d, t.k"
)

{
  echo "fractal compression benchmark  $(date -Is)"
  echo "rows per data set: $ROWS, inserted 1000 per transaction; shared_buffers 1GB (all in memory)"
  echo "postgres: $(/usr/lib/postgresql/15/bin/postgres --version)"
  echo "btree = built-in B-tree with deduplication (default); none/zstd = fractal compression setting"
  echo
  printf '%-15s %-6s %10s %9s %9s %12s %12s %12s\n' dataset index size_MB vs_btree zstd_ratio insert_rows_s point_tps range100_tps
} | tee "$out"

for ds in "${DATASETS[@]}"; do
  IFS=';' read -r name cols icols selectlist pointcond rangecond <<<"$ds"
  collist=$(echo "$icols")
  for m in btree none zstd; do
    t="z_${name}_$m"
    case $m in
      btree) using="btree ($icols)";;
      none) using="fractal ($icols)";;
      zstd) using="fractal ($icols) WITH (compression = zstd)";;
    esac
    "${PSQL[@]}" -c "CREATE TABLE $t (id bigserial, $cols)" \
                 -c "CREATE INDEX ${t}_i ON $t USING $using"
  done
  # The same rows into the three tables, 1000 per transaction, the three
  # loads interleaved batch by batch (the order rotating) so that they see
  # the machine at the same moments, each batch's insert and commit timed
  # apart and summed per table: a paired measurement, as for the reads.
  "${PSQL[@]}" -c "CREATE TABLE src_$name AS SELECT g, $selectlist FROM generate_series(1, $ROWS) g" \
               -c "CREATE INDEX ON src_$name (g)" -c "VACUUM ANALYZE src_$name"
  declare -A LOADSECS=() PTPS=() RTPS=()
  "${PSQL[@]}" -c "CREATE TABLE loadsecs_$name (m text, secs float8)" \
               -c "DO \$\$ DECLARE lo int; i int := 0; k int; j int;
        ms text[] := ARRAY['btree', 'none', 'zstd']; secs float8[] := '{0,0,0}'; t0 timestamptz;
      BEGIN
        FOR lo IN 1..$ROWS BY 1000 LOOP
          FOR k IN 0..2 LOOP
            j := (i + k) % 3 + 1;
            t0 := clock_timestamp();
            EXECUTE format('INSERT INTO %I ($collist) SELECT $collist FROM src_$name WHERE g BETWEEN \$1 AND \$1 + 999 ORDER BY g',
                           'z_${name}_' || ms[j]) USING lo;
            COMMIT;
            secs[j] := secs[j] + extract(epoch FROM clock_timestamp() - t0);
          END LOOP;
          i := i + 1;
        END LOOP;
        INSERT INTO loadsecs_$name SELECT unnest(ms), unnest(secs);
      END \$\$"
  for m in btree none zstd; do
    LOADSECS[$m]=$("${PSQL[@]}" -c "SELECT secs FROM loadsecs_$name WHERE m = '$m'")
  done
  "${PSQL[@]}" -c "VACUUM ANALYZE z_${name}_btree, z_${name}_none, z_${name}_zstd"
  "${PSQL[@]}" -c "CREATE TABLE keys_$name AS SELECT row_number() OVER () AS i, $collist FROM (SELECT $collist FROM src_$name ORDER BY random() LIMIT 10000) s" \
               -c "ALTER TABLE keys_$name ADD PRIMARY KEY (i)" -c "ANALYZE keys_$name"
  bsize=$("${PSQL[@]}" -c "SELECT pg_relation_size('z_${name}_btree_i')")
  for m in btree none zstd; do
    t="z_${name}_$m"
    size=$("${PSQL[@]}" -c "SELECT pg_relation_size('${t}_i')")
    ratio='-'
    [ "$m" = zstd ] && ratio=$("${PSQL[@]}" -c "SELECT round(compression_ratio::numeric, 2) FROM fractal_stats('${t}_i')")
    pc=${pointcond//:x./x.}
    rc=${rangecond//:x./x.}
    cat >"$work/point_$m.sql" <<SQL
\set i random(1, 10000)
SELECT count(*) FROM keys_$name x, $t t WHERE x.i = :i AND $pc;
SQL
    cat >"$work/range_$m.sql" <<SQL
\set i random(1, 10000)
SELECT count(*) FROM (SELECT 1 FROM keys_$name x, LATERAL (SELECT 1 FROM $t t WHERE $rc LIMIT 100) s WHERE x.i = :i) q;
SQL
    chmod 644 "$work"/*.sql
    ptps=$(PGOPTIONS="-c enable_seqscan=off -c enable_bitmapscan=off" pgbench -n -T "$SECS" -f "$work/point_$m.sql" |
      awk '/^tps/ {printf "%.0f", $3}')
    rtps=$(PGOPTIONS="-c enable_seqscan=off -c enable_bitmapscan=off" pgbench -n -T "$SECS" -f "$work/range_$m.sql" |
      awk '/^tps/ {printf "%.0f", $3}')
    printf '%-15s %-6s %10.1f %9.2f %9s %12.0f %12s %12s\n' "$name" "$m" \
      "$(echo "$size / 1048576" | bc -l)" "$(echo "$size / $bsize" | bc -l)" "$ratio" \
      "$(echo "$ROWS / ${LOADSECS[$m]}" | bc -l)" \
      "${ptps:-?}" "${rtps:-?}" | tee -a "$out"
    PTPS[$m]=${ptps:-0}; RTPS[$m]=${rtps:-0}
  done
  # issue 11's in-memory bar: zstd at >= 0.9x of compression = none
  printf '%-15s zstd/none: inserts %.2f, point %.2f, range-100 %.2f\n' "$name" \
    "$(echo "${LOADSECS[none]} / ${LOADSECS[zstd]}" | bc -l)" \
    "$(echo "${PTPS[zstd]} / (${PTPS[none]} + 0.000001)" | bc -l)" \
    "$(echo "${RTPS[zstd]} / (${RTPS[none]} + 0.000001)" | bc -l)" | tee -a "$out"
  # The same two ratios paired: none's script and zstd's interleaved in one
  # pgbench run (bench/paired.sh), so both see the machine at the same
  # moments; the ratio is none's mean latency over zstd's, per round, and
  # its median.  Separate runs differ by 10-20% on a shared virtual machine.
  for w in point range; do
    pr=()
    for ((r = 1; r <= PAIRED_ROUNDS; r++)); do
      pr+=("$(PGOPTIONS="-c enable_seqscan=off -c enable_bitmapscan=off" \
        fr_paired_ratio "$work" 1 "$SECS" "$work/${w}_none.sql" "$work/${w}_zstd.sql")")
    done
    printf '%-15s zstd/none paired %-5s %.2f  rounds: %s\n' "$name" "$w" \
      "$(fr_bench_median "${pr[@]}")" "${pr[*]}" | tee -a "$out"
  done
  # the plans really use the index under test
  PGOPTIONS="-c enable_seqscan=off -c enable_bitmapscan=off" "${PSQL[@]}" \
    -c "EXPLAIN (COSTS OFF) SELECT 1 FROM keys_$name x, LATERAL (SELECT 1 FROM z_${name}_zstd t WHERE ${rangecond//:x./x.} LIMIT 100) s WHERE x.i = 1" \
    >"$work/plan_$name.txt"
  PGOPTIONS="-c enable_seqscan=off -c enable_bitmapscan=off" "${PSQL[@]}" \
    -c "EXPLAIN (COSTS OFF) SELECT count(*) FROM keys_$name x, z_${name}_zstd t WHERE x.i = 1 AND ${pointcond//:x./x.}" \
    >>"$work/plan_$name.txt"
  [ "$(grep -c "z_${name}_zstd_i" "$work/plan_$name.txt")" -ge 2 ] ||
    { echo "plans do not use the fractal index:" >&2; cat "$work/plan_$name.txt" >&2; exit 1; }
done
cp "$out" bench/results/compression-latest.txt
echo "written: $out"
