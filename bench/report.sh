#!/bin/bash
# report.sh RESULTS_DIR [METHODS] [TOTAL_SECS]: builds summary.txt and insert_rate.png
# from RESULTS_DIR/<method>/metrics.env and *.rounds (called by run.sh; can be re-run).
set -u
RES=$1
METHODS=${2:-none,btree,fractal}
TOTAL=${3:-?}
OUT="$RES/summary.txt"

IFS=, read -r -a ML <<< "$METHODS"

val() {  # method key
  local f="$RES/$1/metrics.env"
  [ -f "$f" ] && awk -F= -v k="$2" '$1==k{v=$2} END{print v}' "$f"
}
status() { local s; s=$(val "$1" status); echo "${s:-not-run}"; }

{
  echo "fractal benchmark summary  ($RES)"
  echo "total wall time: ${TOTAL}s"
  echo
  cat "$RES/settings.txt"
  echo
  for m in "${ML[@]}"; do
    echo "status $m: $(status $m)"
    for e in create_extension.txt create_index.err; do
      [ -s "$RES/$m/$e" ] && grep -m1 ERROR "$RES/$m/$e" | sed 's/^/    /'
    done
  done
  echo
  # one column per method, then fractal's ratio to each other method
  REFS=()
  for m in "${ML[@]}"; do [ "$m" != fractal ] && REFS+=("$m"); done
  printf "%-28s" metric; for m in "${ML[@]}"; do printf " %14s" "$m"; done
  for r in "${REFS[@]}"; do printf " %12s" "frac/$r"; done; echo
  printf "%-28s" ----------------------------; for m in "${ML[@]}"; do printf " %14s" --------------; done
  for r in "${REFS[@]}"; do printf " %12s" ------------; done; echo
  for key in iib_rows iib_load_secs iib_rate iib_rate_early iib_rate_late iib_secidx_bytes_early seq_rate \
             wal_bytes_per_row seq_wal_bytes_per_row secidx_bytes secidx_bytes_per_row seq_secidx_bytes heap_bytes \
             idx_fpi_per_row buf_written_per_row blks_read_per_row blks_hit_per_row idx_blks_read_per_row \
             idx_blks_hit_per_row heap_blks_read_per_row msgs_per_leaf_write flush_blocks_read_per_row \
             checkpoints cg_peak_bytes cg_failcnt \
             point_tps point_avg_ms point_p50_ms point_p95_ms point_p99_ms \
             point_idx_reads_per_query point_node_reads_per_query point_chain_reads_per_query \
             point_filter_reads_per_query point_leaf_reads_per_query \
             range_tps range_avg_ms range_p50_ms range_p99_ms \
             range_idx_reads_per_query range_node_reads_per_query range_chain_reads_per_query \
             range_filter_reads_per_query range_leaf_reads_per_query \
             mixed_tps mixed_insert_rows_per_s mixed_insert_avg_ms mixed_read_avg_ms mixed_read_p50_ms mixed_read_p99_ms \
             upsert_rows_sent upsert_rows_inserted upsert_rate upsert_rate_late upsert_idx_bytes \
             upsert_wal_bytes_per_row upsert_idx_blks_read_per_row \
             upsert_flush_blks_read_per_row upsert_msgs_per_leaf_write upsert_checks_skipped upsert_leaf_filter_skips \
             upsert_node_reads_per_row upsert_chain_reads_per_row upsert_filter_reads_per_row upsert_leaf_reads_per_row; do
    f=$(val fractal $key)
    printf "%-28s" "$key"
    for m in "${ML[@]}"; do v=$(val "$m" $key); printf " %14s" "${v:--}"; done
    for r in "${REFS[@]}"; do
      v=$(val "$r" $key)
      awk -v x="${f:--}" -v y="${v:--}" 'BEGIN { printf " %12s", (x=="-"||y=="-"||x==""||y==""||y+0==0) ? "-" : sprintf("%.3f", x/y) }'
    done
    echo
  done
  echo
  echo "Definitions: rate = rows/s (wall clock of pgbench insert rounds); early = rounds within the first 10% of"
  echo "rows (in-memory phase); late = rounds in the last 25% of rows (out-of-memory phase when --mem is set)."
  echo "secidx = secondary indexes only (a,b,c; primary key excluded). *_per_row over the iiBench load."
  echo "idx_fpi_per_row = WAL full-page images of the secondary indexes per row (pg_waldump -w): number of"
  echo "  distinct index pages dirtied per checkpoint cycle, i.e. a lower bound on index page writes per row"
  echo "  (each such page is written at least once by the checkpoint). PG15 has no per-relation write counter."
  echo "msgs_per_leaf_write = fractal_counters() leaf_messages / leaf_writes over the load (messages merged into a"
  echo "  leaf per leaf visit that changed it); flush_blocks_read_per_row = blocks flushes read from outside shared buffers."
  echo "buf_written_per_row = pg_stat_bgwriter buffers_checkpoint+buffers_clean+buffers_backend (all relations)."
  echo "point/range = pgbench latency from per-transaction logs (includes a PK lookup in bench_keys for the key)."
  echo "  *_idx_reads_per_query = blocks of iib's secondary indexes read from outside shared buffers per query;"
  echo "  *_{node,chain,filter,leaf}_reads_per_query = fractal's, by page kind (fractal_counters)."
  echo "upsert_* = idempotent ingest (bench/upsert_insert.sql): INSERT ... ON CONFLICT DO NOTHING of md5 event ids,"
  echo "  ~10% repeats, into a table whose only index is a unique index of the method; rate = rows sent per second,"
  echo "  late = the last 25% of rows sent. Fractal only (fractal_counters over the ingest): flush_blks_read_per_row ="
  echo "  blocks flushes read (the rest of idx_blks_read are lookups); checks_skipped = share of inserts whose"
  echo "  uniqueness check a pre-check made unnecessary; leaf_filter_skips = share of leaf filter probes that skipped the leaf;"
  echo "  node/chain/filter/leaf_reads_per_row = index blocks read from outside shared buffers by page kind (flushes and lookups)."
  echo
  echo "Targets (fractal vs reference):"
  target() {  # label  key  op  factor  ref-method   (op: ge = fractal >= factor*ref, le = fractal <= factor*ref)
    local f r; f=$(val fractal "$2"); r=$(val "$5" "$2")
    awk -v l="$1" -v f="${f:-}" -v r="${r:-}" -v op="$3" -v x="$4" -v k="$2" -v m="$5" 'BEGIN {
      if (f=="" || r=="" || f=="-" || r=="-" || r+0==0) { printf "  %-48s n/a    (fractal=%s %s=%s)\n", l, (f==""?"-":f), m, (r==""?"-":r); exit }
      ratio = f/r; ok = (op=="ge") ? (ratio >= x) : (ratio <= x)
      printf "  %-48s %-6s (ratio %.4f; need %s %s; fractal=%s %s=%s)\n", l, ok?"MET":"MISSED", ratio, (op=="ge"?">=":"<="), x, f, m, r }'
  }
  target_abs() {  # label  key  op  bound   (fractal's own value against a fixed bound)
    local f; f=$(val fractal "$2")
    awk -v l="$1" -v f="${f:-}" -v op="$3" -v x="$4" 'BEGIN {
      if (f=="" || f=="-") { printf "  %-48s n/a    (fractal=-)\n", l; exit }
      ok = (op=="ge") ? (f+0 >= x) : (f+0 <= x)
      printf "  %-48s %-6s (fractal=%s; need %s %s)\n", l, ok?"MET":"MISSED", f, (op=="ge"?">=":"<="), x }'
  }
  # the acceptance lists of the open issues (12: write pipeline, 14: reads)
  maxwal=$(awk -F'max_wal_size: *' 'NF > 1 { split($2, a, " "); print a[1] }' "$RES/settings.txt" 2>/dev/null)
  target "out-of-memory insert rows/s >= 15x btree"   iib_rate_late ge 15  btree
  target "out-of-memory insert rows/s >= 0.5x none"   iib_rate_late ge 0.5 none
  target "in-memory insert rows/s >= 1x btree"        iib_rate_early ge 1 btree
  target "sequential insert rows/s >= 1x btree"       seq_rate ge 1 btree
  target "point lookup avg latency <= 1.1x btree"     point_avg_ms le 1.1 btree
  target "range-100 throughput >= 1x btree"           range_tps ge 1 btree
  # issue 14: twice the 23.4-23.8 messages per leaf write measured when it was filed (2026-11)
  target_abs "messages per leaf write >= 2x 2026-11's 23.8" msgs_per_leaf_write ge 47.6
  if [ "${maxwal:-1GB}" = 1GB ]; then
    target "WAL bytes/row <= 0.5x btree (max_wal_size 1GB)" wal_bytes_per_row le 0.5 btree
  else
    target "WAL bytes/row <= 1x btree (max_wal_size $maxwal)" wal_bytes_per_row le 1 btree
  fi
  target "secondary index size <= 0.6x btree"         secidx_bytes le 0.6 btree
  if [[ " ${REFS[*]} " == *" lsm3 "* ]]; then
    target "out-of-memory insert rows/s >= 1.5x lsm3"   iib_rate_late ge 1.5 lsm3
    target "WAL bytes/row <= 1x lsm3"                   wal_bytes_per_row le 1 lsm3
  fi
  target "idempotent ingest rows/s (late) >= 5x btree" upsert_rate_late ge 5 btree
  if [ -f "$RES/fractal/fractal_stats.txt" ]; then
    echo; echo "fractal_stats / fractal_level_stats at end of iiBench load:"; cat "$RES/fractal/fractal_stats.txt"
  fi
  echo
  echo "rows/s per round (iiBench): method round rows_total rows_per_s secidx_MB cgroup_usage_MB"
  for m in "${ML[@]}"; do
    [ -f "$RES/$m/iib.rounds" ] && awk -v m=$m '!/^#/ {printf "  %-8s %3d %12d %10d %9.0f %9s\n", m, $1, $2, $5, $6/1048576, ($8=="-"?"-":sprintf("%.0f",$8/1048576))}' "$RES/$m/iib.rounds"
  done
  if [ -f "$RES/btree/ups.rounds" ] || [ -f "$RES/fractal/ups.rounds" ]; then
    echo
    echo "rows/s per round (idempotent ingest): method round rows_sent rows_per_s index_MB cgroup_usage_MB"
    for m in btree fractal; do
      [ -f "$RES/$m/ups.rounds" ] && awk -v m=$m '!/^#/ {printf "  %-8s %3d %12d %10d %9.0f %9s\n", m, $1, $2, $5, $6/1048576, ($8=="-"?"-":sprintf("%.0f",$8/1048576))}' "$RES/$m/ups.rounds"
    done
  fi
} > "$OUT"

# ---- plot
plots=""
for m in "${ML[@]}"; do
  f="$RES/$m/iib.rounds"
  [ -s "$f" ] && [ "$(grep -vc '^#' "$f")" -gt 0 ] && plots="$plots${plots:+, }'$f' using (\$2/1e6):5 with linespoints lw 2 title '$m'"
done
if [ -n "$plots" ] && command -v gnuplot >/dev/null; then
  mem=$(awk '/^memory limit:/ { if ($3=="cgroup") { n=split($0,a,"="); printf "%s %s limit %.0f MB", $3, $4, a[n]/1048576 } else print "no memory limit" }' "$RES/settings.txt")
  mem="$mem, $(grep -o 'shared_buffers: *[^ ]*' "$RES/settings.txt" | tr -s ' ')"
  gnuplot <<EOF 2>"$RES/gnuplot.err"
set terminal png size 1100,650 noenhanced
set output '$RES/insert_rate.png'
set title "iiBench-like insert rate vs rows loaded (3 random secondary indexes)\n$mem"
set xlabel 'rows loaded (millions)'
set ylabel 'rows/s (log scale)'
set logscale y 10
set format y '%.0s%c'
set grid ytics mytics
set key outside right
set yrange [*:*]
plot $plots
EOF
fi
