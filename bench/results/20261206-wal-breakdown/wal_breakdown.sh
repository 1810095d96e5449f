#!/bin/bash
# bench/results/20261206-wal-breakdown: WAL by record type, btree vs fractal, in memory.
# 1M rows (2 clients x 5000 transactions of 100 rows) into a table with three
# random-key indexes (a, b bigint, c md5 text) of each method, after a CHECKPOINT;
# pg_waldump --stats=record over each load. Run as root from the repo; PGOPT passes
# settings (e.g. PGOPT="-c fractal.batch_inserts=off"); N = transactions per client.
# WAL breakdown by record type: fractal vs btree, iib-like, in memory
set -e
cd /work/main
source test/cluster.sh
N=${N:-10000}   # transactions per client (100 rows each)
fr_cluster_start walx 54391 "shared_preload_libraries = 'fractal'" "autovacuum = off" "shared_buffers = 2GB" "max_wal_size = 4GB" "synchronous_commit = off" "wal_keep_size = 8GB" "checkpoint_timeout = 30min"
P="fr_pg psql -X -q -At -d postgres"
$P -c "CREATE EXTENSION fractal"
for m in btree fractal; do
  $P -c "CREATE TABLE t_$m (id bigserial PRIMARY KEY, a bigint, b bigint, c text, pad text)"
  $P -c "CREATE INDEX ON t_$m USING $m (a); CREATE INDEX ON t_$m USING $m (b); CREATE INDEX ON t_$m USING $m (c)"
done
for m in btree fractal; do
  sed "s/INTO iib/INTO t_$m/" bench/iibench_insert.sql > /tmp/walx/ins_$m.sql
  chmod 644 /tmp/walx/ins_$m.sql
  $P -c "CHECKPOINT"
  l0=$($P -c "SELECT pg_current_wal_lsn()")
  env PGOPTIONS="$PGOPT" runuser -u postgres -- /usr/lib/postgresql/15/bin/pgbench -n -c 2 -j 2 -t $N -D batch=100 -D padlen=10 -f /tmp/walx/ins_$m.sql postgres > /tmp/walx/pgb_$m.txt 2>&1
  l1=$($P -c "SELECT pg_current_wal_lsn()")
  rows=$($P -c "SELECT count(*) FROM t_$m")
  echo "$m rows=$rows wal_per_row=$($P -c "SELECT round(pg_wal_lsn_diff('$l1','$l0')/$rows,1)")"
  fr_pg pg_waldump -p $FR_PGDATA/pg_wal -s $l0 -e $l1 --stats=record > /tmp/walx/stats_$m.txt 2>&1 || true
  if [ $m = fractal ]; then $P -c "SELECT * FROM fractal_counters()" > /tmp/walx/counters.txt 2>&1 || true; fi
done
fr_cluster_stop walx
