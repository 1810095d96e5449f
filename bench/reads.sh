#!/usr/bin/env bash
# bench/reads.sh -- in-memory read workload: fractal against btree (and any
# other index access method named in READ_METHODS that is installed), in one
# run on one throwaway cluster.
#
#   bash bench/reads.sh [--rows N] [--secs S] [--clients C] [--results DIR]
#
# Each method gets its own table r_<method>(k int8, v int4) loaded with the
# same keys (even numbers, random order) in 1,000-row transactions, then:
#   hit     a key taken from the keys table by a random id, then WHERE k = key
#   miss    WHERE k = a random odd number (never present)
#   range   WHERE k >= key ORDER BY k LIMIT 100
# with C pgbench clients for S seconds each.  shared_buffers is large enough
# for everything to stay in memory.  Prints tps per method and the ratios to
# btree; no timing is asserted anywhere.
#
# Environment: FR_PGBIN (default /usr/lib/postgresql/15/bin), FR_BENCH_PORT.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROWS=2000000
SECS=15
CLIENTS=2
RESULTS=
METHODS=${READ_METHODS:-"btree fractal"}
FRACTAL_OPTS=${FRACTAL_OPTS:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS=$2; shift 2 ;;
        --secs) SECS=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

# shellcheck source=../test/cluster.sh
source test/cluster.sh
trap fr_cluster_cleanup_all EXIT
PORT=${FR_BENCH_PORT:-54851}
fr_cluster_start benchreads "$PORT" "shared_preload_libraries = 'fractal'" \
    "shared_buffers = 1GB" "autovacuum = off" "max_wal_size = 4GB" \
    "synchronous_commit = off" >/dev/null
psqlc() { fr_pg psql -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@"; }
PGBENCH="$FR_PGBIN/pgbench"

psqlc -c "CREATE EXTENSION fractal"
psqlc <<SQL
CREATE TABLE keys (id int PRIMARY KEY, k int8);
INSERT INTO keys SELECT g, 2 * (random() * 1e12)::int8 FROM generate_series(1, $ROWS) g;
CREATE PROCEDURE load_into(tbl text) LANGUAGE plpgsql AS \$\$
DECLARE lo int := 1;
BEGIN
    WHILE lo <= $ROWS LOOP
        EXECUTE format('INSERT INTO %I SELECT k, id FROM keys WHERE id BETWEEN \$1 AND \$2', tbl)
            USING lo, lo + 999;
        COMMIT;
        lo := lo + 1000;
    END LOOP;
END \$\$;
SQL

avail=$(psqlc -c "SELECT string_agg(amname, ' ') FROM pg_am WHERE amtype = 'i'")
run=()
for m in $METHODS; do
    case " $avail " in
        *" $m "*) run+=("$m") ;;
        *) echo "method $m not installed: skipped" ;;
    esac
done

for m in "${run[@]}"; do
    opts=""
    [ "$m" = fractal ] && [ -n "$FRACTAL_OPTS" ] && opts="WITH ($FRACTAL_OPTS)"
    psqlc -c "CREATE TABLE r_$m (k int8, v int4); CREATE INDEX r_${m}_k ON r_$m USING $m (k) $opts"
    psqlc -c "CALL load_into('r_$m')"
    psqlc -c "VACUUM ANALYZE r_$m"
done
psqlc -c "VACUUM ANALYZE keys"

dir=$(mktemp -d /tmp/fractal-reads.XXXXXX)
chmod 755 "$dir"
cat > "$dir/hit.sql" <<'EOF'
\set r random(1, :nkeys)
SELECT k AS key FROM keys WHERE id = :r \gset
SELECT * FROM :tbl WHERE k = :key;
EOF
cat > "$dir/miss.sql" <<'EOF'
\set m 2 * random(0, 1000000000000) + 1
SELECT * FROM :tbl WHERE k = :m;
EOF
cat > "$dir/range.sql" <<'EOF'
\set r random(1, :nkeys)
SELECT k AS key FROM keys WHERE id = :r \gset
SELECT sum(v) FROM (SELECT v FROM :tbl WHERE k >= :key ORDER BY k LIMIT 100) s;
EOF
chmod 644 "$dir"/*.sql

declare -A TPS
for w in hit miss range; do
    for m in "${run[@]}"; do
        out=$(fr_as_owner env PGOPTIONS="-c enable_bitmapscan=off -c enable_seqscan=off" \
              "$PGBENCH" -n -h "$PGHOST" -p "$PGPORT" -U postgres -c "$CLIENTS" -j "$CLIENTS" \
              -T "$SECS" -D nkeys="$ROWS" -D tbl="r_$m" -f "$dir/$w.sql" postgres 2>&1)
        TPS[$w,$m]=$(echo "$out" | awk '/^tps/ {print int($3)}')
    done
done

{
    echo "in-memory reads: $ROWS rows, $CLIENTS clients, ${SECS}s each; fractal opts: ${FRACTAL_OPTS:-default}"
    printf '%-8s' workload; for m in "${run[@]}"; do printf '%12s' "$m"; done
    for m in "${run[@]}"; do [ "$m" = btree ] || printf '%14s' "$m/btree"; done; echo
    for w in hit miss range; do
        printf '%-8s' "$w"
        for m in "${run[@]}"; do printf '%12s' "${TPS[$w,$m]}"; done
        for m in "${run[@]}"; do
            [ "$m" = btree ] && continue
            printf '%14s' "$(awk -v a="${TPS[$w,$m]}" -v b="${TPS[$w,btree]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
        done
        echo
    done
    psqlc -c "SELECT 'fractal stats: ' || row_to_json(s)::text FROM fractal_stats('r_fractal_k') s" 2>/dev/null || true
} | tee "${RESULTS:-$dir}/reads.txt"
rm -rf "$dir"
