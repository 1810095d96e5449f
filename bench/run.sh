#!/bin/bash
# fractal benchmark harness: compares secondary-index methods {none, btree, fractal}
# on iiBench-like random inserts, sequential inserts and reads, in one run on one
# machine, optionally with the server inside a memory-limited cgroup.
# See bench/README.md.  Requires root (cgroups, runuser); plain bash+psql+pgbench+awk.
set -u -o pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
BIN=${PGBIN:-/usr/lib/postgresql/15/bin}

# ---------------------------------------------------------------- defaults
METHODS="none,btree,fractal"
QUICK=0
ROWS=""            # iiBench rows (default depends on --quick)
SEQ_ROWS=""        # sequential-key rows (default ROWS/4)
ROUNDS=""          # load rounds (one sample of rows/s per round)
MEM="512M"         # cgroup memory limit; "none" disables (see README for sizing)
SHARED_BUFFERS="128MB"
CLIENTS=2
JOBS=""
BATCH=100
PADLEN=32
READ_SECS=""       # duration of each read workload
NKEYS=""
FRACTAL_OPTS=""     # reloptions of the fractal indexes (--fractal-opts)
WORKLOADS="iib,seq,upsert"  # --workloads: iib (random-key load + reads), seq, upsert
UPSERT_ROWS=""      # rows sent by the idempotent-ingest workload (--upsert-rows)
MAX_WAL="1GB"       # max_wal_size: PostgreSQL's default, so checkpoints (and full-page images) come as often as in a default install
PORT=${BENCH_PORT:-54329}
KEEP=0
WALDUMP=1
RESULTS_BASE="$BENCH_DIR/results"

usage() {
  cat <<EOF
usage: $0 [options]
  --methods LIST        comma list of none, btree, fractal or any other index access method
                        an installed extension of that name provides, e.g. lsm3 (default $METHODS)
  --quick               tiny sizes, a few seconds per workload (CI smoke test)
  --rows N              iiBench rows to load (default 8000000; quick 20000)
  --seq-rows N          sequential-key rows (default rows/4)
  --rounds N            load rounds / samples of rows/s (default 16; quick 4)
  --mem LIMIT           cgroup memory limit for the server, e.g. 1G, 512M, none (default $MEM)
  --shared-buffers X    shared_buffers (default $SHARED_BUFFERS)
  --clients C           pgbench clients (default $CLIENTS); --jobs J threads (default = clients)
  --batch N             rows per insert transaction (default $BATCH)
  --read-secs S         seconds per read workload (default 30; quick 3)
  --max-wal-size X      max_wal_size (default $MAX_WAL)
  --port P              private port (default $PORT)
  --no-waldump          skip per-index full-page-image counting with pg_waldump
  --keep                keep the scratch data directory
  --fractal-opts OPTS   reloptions for the fractal indexes, e.g. "compression=zstd"
  --workloads LIST      comma list of iib (random-key load, then reads), seq, upsert (default $WORKLOADS)
  --upsert-rows N       rows sent by the idempotent-ingest workload (default rows/2; quick 8000)
  --results DIR         results base directory (default bench/results)
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --methods) METHODS=$2; shift 2;;
    --quick) QUICK=1; shift;;
    --rows) ROWS=$2; shift 2;;
    --seq-rows) SEQ_ROWS=$2; shift 2;;
    --rounds) ROUNDS=$2; shift 2;;
    --mem) MEM=$2; shift 2;;
    --shared-buffers) SHARED_BUFFERS=$2; shift 2;;
    --clients) CLIENTS=$2; shift 2;;
    --jobs) JOBS=$2; shift 2;;
    --batch) BATCH=$2; shift 2;;
    --read-secs) READ_SECS=$2; shift 2;;
    --max-wal-size) MAX_WAL=$2; shift 2;;
    --port) PORT=$2; shift 2;;
    --no-waldump) WALDUMP=0; shift;;
    --keep) KEEP=1; shift;;
    --fractal-opts) FRACTAL_OPTS=$2; shift 2;;
    --workloads) WORKLOADS=$2; shift 2;;
    --upsert-rows) UPSERT_ROWS=$2; shift 2;;
    --results) RESULTS_BASE=$2; shift 2;;
    -h|--help) usage; exit 0;;
    *) echo "unknown option $1" >&2; usage >&2; exit 2;;
  esac
done

if [ "$QUICK" = 1 ]; then
  : "${ROWS:=20000}" "${ROUNDS:=4}" "${READ_SECS:=3}"
else
  : "${ROWS:=8000000}" "${ROUNDS:=16}" "${READ_SECS:=30}"
fi
: "${SEQ_ROWS:=$((ROWS / 4))}" "${JOBS:=$CLIENTS}"
if [ "$QUICK" = 1 ]; then : "${UPSERT_ROWS:=8000}"; else : "${UPSERT_ROWS:=$((ROWS / 2))}"; fi
[ -z "$NKEYS" ] && NKEYS=$(( ROWS / 10 < 100000 ? ROWS / 10 : 100000 ))
[ "$NKEYS" -lt 100 ] && NKEYS=100

[ "$(id -u)" = 0 ] || { echo "run as root (needs runuser and cgroups)" >&2; exit 2; }

TS=$(date +%Y%m%d-%H%M%S)
RES="$RESULTS_BASE/$TS"
mkdir -p "$RES"
WORK=$(mktemp -d /var/tmp/fractal-bench.XXXXXX)
chmod 755 "$WORK"
DATA="$WORK/data"; SOCK="$WORK/sock"; PGLOG="$WORK/postgres.log"
mkdir -p "$SOCK"; chown postgres: "$WORK" "$SOCK"
CG_DIR=""; CG_KIND="none"; CG_NOTE=""

log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$RES/run.log" >&2; }

# ---------------------------------------------------------------- helpers
to_bytes() {  # 1G, 512M, 512MB, 1024k, plain bytes
  echo "$1" | awk '{ s=toupper($1); sub(/B$/,"",s); n=s+0; u=substr(s,length(s),1);
    if (u=="K") n*=1024; else if (u=="M") n*=1048576; else if (u=="G") n*=1073741824;
    else if (u=="T") n*=1099511627776; printf "%.0f\n", n }'
}
psqlc() { "$BIN/psql" -X -q -h "$SOCK" -p "$PORT" -U postgres -d bench -v ON_ERROR_STOP=1 "$@"; }
q() { psqlc -At -c "$1"; }
pgb() { "$BIN/pgbench" -h "$SOCK" -p "$PORT" -U postgres -n "$@" bench; }
now() { date +%s.%N; }
has_wl() { [[ ",$WORKLOADS," == *",$1,"* ]]; }

pg_running() { [ -f "$DATA/postmaster.pid" ] && kill -0 "$(head -1 "$DATA/postmaster.pid")" 2>/dev/null; }
stop_pg() {
  if pg_running; then
    runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 120 stop >/dev/null 2>&1 ||
      runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1
  fi
}
cleanup() {
  stop_pg
  if [ -n "$CG_DIR" ] && [ -d "$CG_DIR" ]; then
    for i in 1 2 3 4 5; do rmdir "$CG_DIR" 2>/dev/null && break; sleep 1; done
  fi
  [ "$KEEP" = 1 ] && echo "kept scratch dir $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- cgroup
cg_usage() {  # current and peak bytes
  [ -z "$CG_DIR" ] && { echo "- -"; return; }
  if [ "$CG_KIND" = v1 ]; then
    echo "$(cat "$CG_DIR/memory.usage_in_bytes") $(cat "$CG_DIR/memory.max_usage_in_bytes")"
  else
    echo "$(cat "$CG_DIR/memory.current") $(cat "$CG_DIR/memory.peak" 2>/dev/null || echo -)"
  fi
}
cg_reset_peak() {
  [ "$CG_KIND" = v1 ] && echo 0 > "$CG_DIR/memory.max_usage_in_bytes" 2>/dev/null
  [ "$CG_KIND" = v2 ] && echo 0 > "$CG_DIR/memory.peak" 2>/dev/null   # newer kernels only
  return 0
}
cg_setup() {
  if [ "$MEM" = none ] || [ -z "$MEM" ]; then CG_NOTE="no memory limit requested (--mem none): in-memory comparison"; return; fi
  local bytes name d p rel root mnt
  bytes=$(to_bytes "$MEM"); name="fractal_bench.$$"
  # cgroup v2 (pure, or hybrid 'unified' mount) if it has the memory controller
  for root in /sys/fs/cgroup /sys/fs/cgroup/unified; do
    [ -f "$root/cgroup.controllers" ] || continue
    grep -qw memory "$root/cgroup.controllers" || continue
    rel=$(awk -F: '$1=="0"{print $3}' /proc/self/cgroup)
    for p in "$root${rel%/}" "$root"; do
      echo +memory > "$p/cgroup.subtree_control" 2>/dev/null
      d="$p/$name"
      mkdir "$d" 2>/dev/null || continue
      if echo "$bytes" > "$d/memory.max" 2>/dev/null; then
        echo 0 > "$d/memory.swap.max" 2>/dev/null
        CG_DIR=$d; CG_KIND=v2; CG_NOTE="cgroup v2: $d memory.max=$bytes"; return
      fi
      rmdir "$d" 2>/dev/null
    done
  done
  # cgroup v1 memory controller
  mnt=$(awk '$3=="cgroup" && $4 ~ /(^|,)memory(,|$)/ {print $2; exit}' /proc/mounts)
  if [ -n "$mnt" ]; then
    rel=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
    for p in "$mnt${rel%/}" "$mnt"; do
      d="$p/$name"
      mkdir "$d" 2>/dev/null || continue
      if echo "$bytes" > "$d/memory.limit_in_bytes" 2>/dev/null &&
         [ "$(cat "$d/memory.limit_in_bytes")" -le "$bytes" ]; then
        echo 0 > "$d/memory.swappiness" 2>/dev/null
        CG_DIR=$d; CG_KIND=v1; CG_NOTE="cgroup v1: $d memory.limit_in_bytes=$(cat "$d/memory.limit_in_bytes")"; return
      fi
      rmdir "$d" 2>/dev/null
    done
  fi
  CG_NOTE="NO cgroup could be created: server runs without a memory limit (in-memory comparison only)"
}

# ---------------------------------------------------------------- cluster
start_cluster() {
  rm -rf "$DATA"
  runuser -u postgres -- "$BIN/initdb" -D "$DATA" -A trust -U postgres --no-sync >"$WORK/initdb.log" 2>&1 ||
    { cat "$WORK/initdb.log" >&2; return 1; }
  cat >>"$DATA/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCK'
shared_buffers = $SHARED_BUFFERS
max_wal_size = $MAX_WAL
wal_keep_size = '4GB'
synchronous_commit = off
autovacuum = off
max_connections = 50
logging_collector = off
jit = off
EOF
  # preload, for every method alike, fractal (it registers the custom WAL
  # records of the fractal index and changes nothing else) and the library
  # of any other extension method of the run that is installed (lsm3 must be
  # preloaded)
  echo "shared_preload_libraries = '$PRELOAD'" >>"$DATA/postgresql.conf"
  [ -n "$CG_DIR" ] && cg_reset_peak
  local start="'$BIN/pg_ctl' -D '$DATA' -l '$PGLOG' -w -t 120 start"
  if [ -n "$CG_DIR" ]; then
    # start inside the cgroup so that all shared memory and page cache is charged to it
    sh -c "echo \$\$ > '$CG_DIR/cgroup.procs' && exec runuser -u postgres -- $start" >/dev/null ||
      { tail -20 "$PGLOG" >&2; return 1; }
    local pm; pm=$(head -1 "$DATA/postmaster.pid")
    if ! grep -q "$(basename "$CG_DIR")" "/proc/$pm/cgroup"; then
      echo "$pm" > "$CG_DIR/cgroup.procs"   # fallback: move the postmaster in
    fi
    grep -q "$(basename "$CG_DIR")" "/proc/$pm/cgroup" || { log "postmaster not in cgroup!"; return 1; }
  else
    runuser -u postgres -- sh -c "$start" >/dev/null || { tail -20 "$PGLOG" >&2; return 1; }
  fi
  "$BIN/createdb" -h "$SOCK" -p "$PORT" -U postgres bench
}

# ---------------------------------------------------------------- stats
# snapshot of counters as key=value lines
snapshot() {  # $1 = table
  psqlc -At -F= <<EOF
SELECT 'lsn', pg_current_wal_lsn();
SELECT 'blks_read', blks_read FROM pg_stat_database WHERE datname = current_database();
SELECT 'blks_hit', blks_hit FROM pg_stat_database WHERE datname = current_database();
SELECT 'buf_checkpoint', buffers_checkpoint FROM pg_stat_bgwriter;
SELECT 'buf_clean', buffers_clean FROM pg_stat_bgwriter;
SELECT 'buf_backend', buffers_backend FROM pg_stat_bgwriter;
SELECT 'buf_alloc', buffers_alloc FROM pg_stat_bgwriter;
SELECT 'checkpoints', checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter;
SELECT 'idx_blks_read', coalesce(sum(s.idx_blks_read),0) FROM pg_statio_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid WHERE s.relid = '$1'::regclass AND NOT i.indisprimary;
SELECT 'idx_blks_hit', coalesce(sum(s.idx_blks_hit),0) FROM pg_statio_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid WHERE s.relid = '$1'::regclass AND NOT i.indisprimary;
SELECT 'heap_blks_read', coalesce(heap_blks_read,0) FROM pg_statio_user_tables WHERE relid = '$1'::regclass;
SELECT 'heap_blks_hit', coalesce(heap_blks_hit,0) FROM pg_statio_user_tables WHERE relid = '$1'::regclass;
EOF
}
getv() { awk -F= -v k="$2" '$1==k{print $2}' "$1"; }
secidx_bytes() { q "SELECT coalesce(sum(pg_relation_size(indexrelid)),0) FROM pg_index WHERE indrelid = '$1'::regclass AND NOT indisprimary"; }

# count full-page images per relfilenode in [from,to) of WAL -> appends "relfilenode count" lines
waldump_fpi() {  # $1 from-lsn $2 to-lsn $3 out-file
  [ "$WALDUMP" = 1 ] || return 0
  [ "$1" = "$2" ] && return 0
  "$BIN/pg_waldump" -p "$DATA/pg_wal" -s "$1" -e "$2" -w 2>>"$WORK/waldump.err" |
    awk '{ for (i=1;i<=NF;i++) if ($i=="rel") { r=$(i+1); split(r,p,"/"); fork="main";
             for (j=i+2;j<=NF && $j!="blk";j++) if ($j=="fork") fork=$(j+1);
             if ($(j+2) ~ /^FPW/ && fork=="main") c[p[3]]++ } }
         END { for (k in c) print k, c[k] }' >>"$3"
}

# ------------------------------------------------------------- load phase
# load_table TABLE SCRIPT ROWS ROUNDS OUTPREFIX
load_table() {
  local tbl=$1 script=$2 rows=$3 rounds=$4 out=$5
  local per_round=$(( (rows + rounds - 1) / rounds ))
  local tpc=$(( (per_round + BATCH * CLIENTS - 1) / (BATCH * CLIENTS) ))
  [ "$tpc" -lt 1 ] && tpc=1
  local round_rows=$(( tpc * BATCH * CLIENTS )) done=0 r t0 t1 secs rate
  q "CHECKPOINT" >/dev/null
  snapshot "$tbl" > "$out.before"
  local dump_from; dump_from=$(q "SELECT pg_current_wal_flush_lsn()")
  : > "$out.fpi"
  printf "# round rows_total round_rows secs rows_per_s secidx_bytes total_rel_bytes cg_usage wal_bytes_total\n" > "$out.rounds"
  local lsn0; lsn0=$(getv "$out.before" lsn)
  local tstart; tstart=$(now)
  for ((r = 1; r <= rounds; r++)); do
    t0=$(now)
    pgb -f "$BENCH_DIR/$script" -D batch="$BATCH" -D padlen="$PADLEN" -c "$CLIENTS" -j "$JOBS" -t "$tpc" \
      > "$out.pgbench.$r" 2>&1 || { log "pgbench failed (see $out.pgbench.$r)"; tail -5 "$out.pgbench.$r" >&2; return 1; }
    t1=$(now)
    done=$(( done + round_rows ))
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
    rate=$(awk -v n="$round_rows" -v s="$secs" 'BEGIN{printf "%.0f", n/s}')
    local sz tot wal cg
    sz=$(secidx_bytes "$tbl")
    tot=$(q "SELECT pg_total_relation_size('$tbl')")
    wal=$(q "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0')")
    cg=$(cg_usage | awk '{print $1}')
    printf "%d %d %d %s %s %s %s %s %s\n" "$r" "$done" "$round_rows" "$secs" "$rate" "$sz" "$tot" "$cg" "$wal" >> "$out.rounds"
    log "  $tbl round $r/$rounds: rows=$done rate=${rate} rows/s secidx=$((sz/1048576))MB total=$((tot/1048576))MB cg=$cg"
    if [ "$WALDUMP" = 1 ]; then
      sleep 0.5
      local dump_to; dump_to=$(q "SELECT pg_current_wal_flush_lsn()")
      waldump_fpi "$dump_from" "$dump_to" "$out.fpi"
      dump_from=$dump_to
    fi
  done
  local tend; tend=$(now)
  sleep 1   # let stats reach shared memory
  snapshot "$tbl" > "$out.after"
  echo "$done $(awk -v a="$tstart" -v b="$tend" 'BEGIN{printf "%.3f", b-a}')" > "$out.total"
}

# percentile summary of pgbench per-transaction logs (latency field 3, script field 4)
lat_summary() {  # $1 log prefix, $2 script number or "all"  -> "n avg p50 p95 p99" in ms
  cat "$1".* 2>/dev/null | awk -v s="$2" '(s=="all" || $4==s) {print $3}' | sort -n |
    awk '{ v[NR]=$1; sum+=$1 } END {
      if (NR==0) { print "0 - - - -"; exit }
      i50=int(NR*0.50); if (i50<1) i50=1; i95=int(NR*0.95); if (i95<1) i95=1; i99=int(NR*0.99); if (i99<1) i99=1;
      printf "%d %.3f %.3f %.3f %.3f\n", NR, sum/NR/1000, v[i50]/1000, v[i95]/1000, v[i99]/1000 }'
}
pgb_tps() { awk '/^tps = / {print $3; exit}' "$1"; }

# ------------------------------------------------------------- per method
run_method() {
  local m=$1 md="$RES/$1"
  mkdir -p "$md"
  local M="$md/metrics.env"; : > "$M"
  log "=== method $m"
  start_cluster || { echo "status=failed_to_start" >> "$M"; return 1; }
  if [ "$m" != none ] && [ "$m" != btree ]; then
    # fractal, or another method provided by an extension of the same name
    if ! q "CREATE EXTENSION $m" > "$md/create_extension.txt" 2>&1; then
      log "$m: CREATE EXTENSION failed -> unavailable: $(head -1 "$md/create_extension.txt")"
      echo "status=unavailable(CREATE EXTENSION failed)" >> "$M"; stop_pg; return 0
    fi
  fi
  local idxm=$m with=""
  [ "$m" = fractal ] && [ -n "$FRACTAL_OPTS" ] && with=" WITH ($FRACTAL_OPTS)"
  has_wl iib || echo "status=ok" >> "$M"
  if has_wl iib; then run_iib "$m" "$md" "$idxm" "$with" || { stop_pg; return 0; }; fi
  if has_wl seq; then run_seq "$m" "$md" "$idxm" "$with"; fi
  if has_wl upsert && [ "$m" != none ]; then run_upsert "$m" "$md" "$idxm" "$with"; fi
  echo "cg_peak_bytes_end=$(cg_usage | awk '{print $2}')" >> "$M"
  [ "$CG_KIND" = v1 ] && grep -E '^(total_)?(cache|rss|mapped_file|shmem) ' "$CG_DIR/memory.stat" > "$md/cgroup_memory.stat"
  [ "$CG_KIND" = v1 ] && echo "cg_failcnt=$(cat "$CG_DIR/memory.failcnt")" >> "$M"
  stop_pg
  cp "$PGLOG" "$md/postgres.log" 2>/dev/null
}

# ---- (a) iiBench random-key load, then (c) reads on it; returns 1 when the
# method cannot run (its status is written)
run_iib() {
  local m=$1 md=$2 idxm=$3 with=$4 M="$2/metrics.env"
  q "CREATE TABLE iib (id bigserial PRIMARY KEY, ts timestamptz DEFAULT now(), a bigint, b bigint, c text, pad text)"
  if [ "$m" != none ]; then
    for col in a b c; do
      q "CREATE INDEX iib_$col ON iib USING $idxm ($col)$with" 2>"$md/create_index.err" ||
        { log "$m: CREATE INDEX failed: $(head -1 "$md/create_index.err")"; echo "status=unavailable(CREATE INDEX failed)" >> "$M"; return 1; }
    done
  fi
  log "$m: iiBench load of $ROWS rows in $ROUNDS rounds, $CLIENTS clients, batch $BATCH"
  load_table iib iibench_insert.sql "$ROWS" "$ROUNDS" "$md/iib" || { echo "status=load_failed" >> "$M"; return 1; }
  q "SELECT c.relname, pg_relation_size(c.oid), pg_relation_filenode(c.oid) FROM pg_class c WHERE c.relname LIKE 'iib%' AND c.relkind IN ('r','i') ORDER BY 1" \
    | tr '|' ' ' > "$md/iib.sizes"
  if [ "$m" = fractal ]; then
    for col in a b c; do
      { echo "-- fractal_stats('iib_$col')"; psqlc -c "SELECT * FROM fractal_stats('iib_$col')";
        echo "-- fractal_level_stats('iib_$col')"; psqlc -c "SELECT * FROM fractal_level_stats('iib_$col')"; } \
        >> "$md/fractal_stats.txt" 2>&1
    done
    # flush activity of the load (the cluster is new, so counters start at 0)
    counters > "$md/counters.txt"
  fi
  local nrows secs; read -r nrows secs < "$md/iib.total"
  {
    echo "status=ok"
    echo "iib_rows=$nrows"
    echo "iib_rate=$(awk '!/^#/ {n+=$3; s+=$4} END{printf "%.0f", n/s}' "$md/iib.rounds")"
    echo "iib_load_secs=$(awk '!/^#/ {s+=$4} END{printf "%.1f", s}' "$md/iib.rounds")"
    # early phase = rounds covering the first 10% of rows; late (out-of-memory) = last 25%
    awk -v N="$nrows" '!/^#/ { if ($2 <= 0.1*N || NR==2) { er+=$3; es+=$4 } if ($2 > 0.75*N) { lr+=$3; ls+=$4 } }
       END { printf "iib_rate_early=%.0f\niib_rate_late=%.0f\n", er/es, (ls>0? lr/ls : 0) }' "$md/iib.rounds"
    awk -v N="$nrows" '!/^#/ && ($2 <= 0.1*N || NR==2) {s=$6} END {printf "iib_secidx_bytes_early=%s\n", s}' "$md/iib.rounds"
    local B="$md/iib.before" A="$md/iib.after" k
    echo "wal_bytes_per_row=$(q "SELECT round(pg_wal_lsn_diff('$(getv "$A" lsn)', '$(getv "$B" lsn)') / $nrows, 1)")"
    for k in blks_read blks_hit idx_blks_read idx_blks_hit heap_blks_read; do
      echo "${k}_per_row=$(awk -v a="$(getv "$A" $k)" -v b="$(getv "$B" $k)" -v n="$nrows" 'BEGIN{printf "%.4f", (a-b)/n}')"
    done
    echo "buf_written_per_row=$(awk -v a1="$(getv "$A" buf_checkpoint)" -v a2="$(getv "$A" buf_clean)" -v a3="$(getv "$A" buf_backend)" \
       -v b1="$(getv "$B" buf_checkpoint)" -v b2="$(getv "$B" buf_clean)" -v b3="$(getv "$B" buf_backend)" -v n="$nrows" \
       'BEGIN{printf "%.4f", (a1+a2+a3-b1-b2-b3)/n}')"
    echo "checkpoints=$(( $(getv "$A" checkpoints) - $(getv "$B" checkpoints) ))"
    echo "secidx_bytes=$(secidx_bytes iib)"
    echo "secidx_bytes_per_row=$(awk -v s="$(secidx_bytes iib)" -v n="$nrows" 'BEGIN{printf "%.1f", s/n}')"
    echo "heap_bytes=$(q "SELECT pg_relation_size('iib')")"
    echo "cg_peak_bytes=$(cg_usage | awk '{print $2}')"
    if [ -s "$md/counters.txt" ]; then
      # messages merged into leaves per leaf write; blocks flushes read, per row
      awk -v n="$nrows" '{c[$1]=$2} END {
        if (c["leaf_writes"] > 0) printf "msgs_per_leaf_write=%.1f\n", c["leaf_messages"]/c["leaf_writes"]
        printf "flush_blocks_read_per_row=%.4f\n", c["flush_blocks_read"]/n }' "$md/counters.txt"
    fi
    if [ "$WALDUMP" = 1 ] && [ "$m" != none ]; then
      # full-page images of the secondary indexes = distinct index pages dirtied per checkpoint cycle
      local fns; fns=$(q "SELECT string_agg(pg_relation_filenode(indexrelid)::text, ' ') FROM pg_index WHERE indrelid='iib'::regclass AND NOT indisprimary")
      awk -v f="$fns" -v n="$nrows" 'BEGIN{split(f,a," "); for(i in a) want[a[i]]=1} ($1 in want){s+=$2} END{printf "idx_fpi_per_row=%.5f\n", s/n}' "$md/iib.fpi"
    fi
  } >> "$M"

  # ---- (c) reads on the loaded iiBench table
  if [ "$m" != none ]; then
    log "$m: reads (${READ_SECS}s each)"
    q "ANALYZE iib" >/dev/null
    local pct; pct=$(awk -v k="$NKEYS" -v n="$nrows" 'BEGIN{p=300.0*k/n; if (p>100) p=100; printf "%.4f", p}')
    q "CREATE TABLE bench_keys AS SELECT (row_number() OVER ())::int AS id, a FROM (SELECT a FROM iib TABLESAMPLE SYSTEM ($pct) WHERE a IS NOT NULL LIMIT $NKEYS) s;
       ALTER TABLE bench_keys ADD PRIMARY KEY (id); ANALYZE bench_keys" >/dev/null
    local nk; nk=$(q "SELECT count(*) FROM bench_keys")
    local k1; k1=$(q "SELECT a FROM bench_keys WHERE id = 1")
    { echo "-- point"; psqlc -c "EXPLAIN SELECT * FROM iib WHERE a = $k1";
      echo "-- range"; psqlc -c "EXPLAIN SELECT * FROM iib WHERE a >= $k1 ORDER BY a LIMIT 100"; } > "$md/plans.txt" 2>&1
    local w
    for w in point range; do
      rm -f "$WORK/lat_$w".*
      snapshot iib > "$md/$w.before"
      [ "$m" = fractal ] && counters > "$md/$w.counters.before"
      pgb -f "$BENCH_DIR/${w}_select.sql" -D nkeys="$nk" -c "$CLIENTS" -j "$JOBS" -T "$READ_SECS" \
        -l --log-prefix="$WORK/lat_$w" > "$md/$w.pgbench" 2>&1 || log "$w pgbench failed"
      snapshot iib > "$md/$w.after"
      [ "$m" = fractal ] && counters > "$md/$w.counters.after"
      local tps; tps=$(pgb_tps "$md/$w.pgbench")
      read -r n avg p50 p95 p99 <<< "$(lat_summary "$WORK/lat_$w" all)"
      printf "%s_tps=%s\n%s_n=%s\n%s_avg_ms=%s\n%s_p50_ms=%s\n%s_p95_ms=%s\n%s_p99_ms=%s\n" \
        $w "$tps" $w "$n" $w "$avg" $w "$p50" $w "$p95" $w "$p99" >> "$M"
      # blocks of iib's secondary indexes read from outside shared buffers
      # per query, and (fractal) which kind of page they were
      [ "${n:-0}" -gt 0 ] 2>/dev/null || continue
      awk -v a="$(getv "$md/$w.after" idx_blks_read)" -v b="$(getv "$md/$w.before" idx_blks_read)" -v n="$n" -v w="$w" \
        'BEGIN{printf "%s_idx_reads_per_query=%.4f\n", w, (a-b)/n}' >> "$M"
      if [ -s "$md/$w.counters.after" ]; then
        local kind
        for kind in node chain filter leaf; do
          echo "${w}_${kind}_reads_per_query=$(counter_delta "$md/$w" ${kind}_blocks_read "$n")" >> "$M"
        done
      fi
    done
    # mixed: 90% insert transactions (batch rows each) / 10% point reads
    rm -f "$WORK/lat_mixed".*
    pgb -f "$BENCH_DIR/iibench_insert.sql@9" -f "$BENCH_DIR/point_select.sql@1" -D batch="$BATCH" -D padlen="$PADLEN" \
      -D nkeys="$nk" -c "$CLIENTS" -j "$JOBS" -T "$READ_SECS" -l --log-prefix="$WORK/lat_mixed" > "$md/mixed.pgbench" 2>&1 || log "mixed pgbench failed"
    read -r ni iavg _ _ ip99 <<< "$(lat_summary "$WORK/lat_mixed" 0)"
    read -r nr ravg rp50 rp95 rp99 <<< "$(lat_summary "$WORK/lat_mixed" 1)"
    {
      echo "mixed_tps=$(pgb_tps "$md/mixed.pgbench")"
      echo "mixed_insert_rows_per_s=$(awk -v n="$ni" -v b="$BATCH" -v s="$READ_SECS" 'BEGIN{printf "%.0f", n*b/s}')"
      echo "mixed_insert_avg_ms=$iavg"; echo "mixed_insert_p99_ms=$ip99"
      echo "mixed_read_avg_ms=$ravg"; echo "mixed_read_p50_ms=$rp50"; echo "mixed_read_p95_ms=$rp95"; echo "mixed_read_p99_ms=$rp99"
    } >> "$M"
    rm -f "$WORK"/lat_*
  fi
}

# ---- (b) sequential keys
run_seq() {
  local m=$1 md=$2 idxm=$3 with=$4 M="$2/metrics.env"
  q "CREATE TABLE iis (id bigserial PRIMARY KEY, ts timestamptz DEFAULT now(), a bigint, b bigint, c text, pad text); CREATE SEQUENCE iis_a_seq"
  if [ "$m" != none ]; then
    q "CREATE INDEX iis_ts ON iis USING $idxm (ts)$with; CREATE INDEX iis_a ON iis USING $idxm (a)$with" 2>"$md/create_index_seq.err" ||
      log "$m: sequential CREATE INDEX failed: $(head -1 "$md/create_index_seq.err")"
  fi
  local srounds=$(( ROUNDS / 4 < 2 ? 2 : ROUNDS / 4 ))
  log "$m: sequential-key load of $SEQ_ROWS rows"
  if load_table iis seq_insert.sql "$SEQ_ROWS" "$srounds" "$md/iis"; then
    read -r nrows secs < "$md/iis.total"
    {
      echo "seq_rows=$nrows"
      echo "seq_rate=$(awk '!/^#/ {n+=$3; s+=$4} END{printf "%.0f", n/s}' "$md/iis.rounds")"
      echo "seq_wal_bytes_per_row=$(q "SELECT round(pg_wal_lsn_diff('$(getv "$md/iis.after" lsn)', '$(getv "$md/iis.before" lsn)') / $nrows, 1)")"
      echo "seq_secidx_bytes=$(secidx_bytes iis)"
    } >> "$M"
  fi
}

# fractal_counters() as "name value" lines (empty without the preload)
counters() { q "SELECT name, value FROM fractal_counters()" 2>/dev/null | tr '|' ' '; }
# (after - before) / $3 of counter $2 between $1.counters.before and .after
counter_delta() {
  awk -v k="$2" -v n="$3" 'FNR==NR { if ($1==k) b=$2; next } $1==k { printf "%.4f", ($2-b)/n }' \
    "$1.counters.before" "$1.counters.after"
}
# change of counter $2 over the sum of the changes of $3 (and $4)
counter_ratio() {
  local a b c=0
  a=$(counter_delta "$1" "$2" 1); b=$(counter_delta "$1" "$3" 1)
  [ -n "${4:-}" ] && c=$(counter_delta "$1" "$4" 1)
  awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN { printf "%.4f", (b + c > 0 ? a / (b + c) : 0) }'
}

# ---- (d) idempotent ingest: ON CONFLICT DO NOTHING into a unique index on
# a random event id, ~10% of ids repeated (bench/upsert_insert.sql)
run_upsert() {
  local m=$1 md=$2 idxm=$3 with=$4 M="$2/metrics.env"
  q "CREATE TABLE ups (id bigserial, k text, pad text); CREATE SEQUENCE ups_n" >/dev/null
  q "CREATE UNIQUE INDEX ups_k ON ups USING $idxm (k)$with" 2>"$md/create_index_ups.err" ||
    { log "$m: CREATE UNIQUE INDEX failed: $(head -1 "$md/create_index_ups.err")"; echo "upsert_status=unavailable" >> "$M"; return 0; }
  log "$m: idempotent ingest of $UPSERT_ROWS rows (ON CONFLICT DO NOTHING, ~10% repeats)"
  [ "$m" = fractal ] && counters > "$md/ups.counters.before"
  load_table ups upsert_insert.sql "$UPSERT_ROWS" "$ROUNDS" "$md/ups" || { echo "upsert_status=load_failed" >> "$M"; return 0; }
  [ "$m" = fractal ] && counters > "$md/ups.counters.after"
  local nrows secs ins; read -r nrows secs < "$md/ups.total"
  ins=$(q "SELECT count(*) FROM ups")
  {
    echo "upsert_rows_sent=$nrows"
    echo "upsert_rows_inserted=$ins"
    echo "upsert_rate=$(awk '!/^#/ {n+=$3; s+=$4} END{printf "%.0f", n/s}' "$md/ups.rounds")"
    awk -v N="$nrows" '!/^#/ { if ($2 > 0.75*N) { lr+=$3; ls+=$4 } } END { printf "upsert_rate_late=%.0f\n", (ls>0? lr/ls : 0) }' "$md/ups.rounds"
    echo "upsert_idx_bytes=$(q "SELECT pg_relation_size('ups_k')")"
    echo "upsert_wal_bytes_per_row=$(q "SELECT round(pg_wal_lsn_diff('$(getv "$md/ups.after" lsn)', '$(getv "$md/ups.before" lsn)') / $nrows, 1)")"
    echo "upsert_idx_blks_read_per_row=$(awk -v a="$(getv "$md/ups.after" idx_blks_read)" -v b="$(getv "$md/ups.before" idx_blks_read)" -v n="$nrows" 'BEGIN{printf "%.4f", (a-b)/n}')"
    if [ -s "$md/ups.counters.after" ]; then
      # of those reads, the ones flushes made (the rest are lookups: the
      # ON CONFLICT pre-checks and the insert's own uniqueness check); the
      # share of inserts whose check a pre-check made unnecessary; the share
      # of lookups that tested a leaf filter and so skipped the leaf
      echo "upsert_flush_blks_read_per_row=$(counter_delta "$md/ups" flush_blocks_read "$nrows")"
      echo "upsert_msgs_per_leaf_write=$(counter_ratio "$md/ups" leaf_messages leaf_writes)"
      echo "upsert_checks_skipped=$(counter_ratio "$md/ups" unique_checks_skipped unique_checks unique_checks_skipped)"
      echo "upsert_leaf_filter_skips=$(counter_ratio "$md/ups" leaf_filter_skips leaf_filter_probes)"
      # all block reads of the index by what the page held (flushes' and
      # lookups' alike; warm-up reads of flushes are in flush_blks_read)
      local kind
      for kind in node chain filter leaf; do
        echo "upsert_${kind}_reads_per_row=$(counter_delta "$md/ups" ${kind}_blocks_read "$nrows")"
      done
    fi
  } >> "$M"
}

# ------------------------------------------------------------- main
IFS=, read -r -a MLIST <<< "$METHODS"
PKGLIB=$("$BIN/pg_config" --pkglibdir)
PRELOAD=""
for lib in fractal "${MLIST[@]}"; do
  case "$lib" in none|btree) continue;; esac
  [ -f "$PKGLIB/$lib.so" ] && [[ ",$PRELOAD," != *",$lib,"* ]] && PRELOAD="${PRELOAD:+$PRELOAD,}$lib"
done
cg_setup
log "results: $RES"
log "memory: $CG_NOTE"
PGVER=$("$BIN/postgres" --version)
{
  echo "date:            $(date -Is)"
  echo "host:            $(hostname)  nproc=$(nproc)  RAM=$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "cpu:             $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
  echo "kernel:          $(uname -sr)"
  echo "os:              $(. /etc/os-release; echo "$PRETTY_NAME")"
  echo "postgres:        $PGVER"
  echo "memory limit:    $CG_NOTE"
  echo "shared_buffers:  $SHARED_BUFFERS   max_wal_size: $MAX_WAL   synchronous_commit=off autovacuum=off"
  echo "fractal options: ${FRACTAL_OPTS:-(defaults)}"
  echo "rows:            iiBench $ROWS in $ROUNDS rounds; sequential $SEQ_ROWS; batch $BATCH rows/txn; pad $PADLEN bytes"
  echo "clients:         $CLIENTS (threads $JOBS); read workloads ${READ_SECS}s each; sampled keys $NKEYS"
  echo "workloads:       $WORKLOADS (idempotent ingest: $UPSERT_ROWS rows sent)"
  echo "preloaded:       ${PRELOAD:-(none)}"
  echo "mode:            $([ "$QUICK" = 1 ] && echo quick || echo full)   methods: $METHODS"
} > "$RES/settings.txt"
cat "$RES/settings.txt" >&2

T_START=$(now)
for m in "${MLIST[@]}"; do
  [[ "$m" =~ ^[a-z_][a-z0-9_]*$ ]] || { log "bad method name $m (skipped)"; continue; }
  run_method "$m" || log "method $m failed"
done
T_TOTAL=$(awk -v a="$T_START" -v b="$(now)" 'BEGIN{printf "%.0f", b-a}')

# ------------------------------------------------------------- report
"$BENCH_DIR/report.sh" "$RES" "$METHODS" "$T_TOTAL"
# in-memory reads (hit / miss / range-100 against btree), full runs only
if [ "$QUICK" = 0 ] && [ "${SKIP_MEM_READS:-0}" = 0 ]; then
  if FR_PGBIN="$BIN" bash "$BENCH_DIR/reads.sh" --results "$RES" >&2; then
    { echo; cat "$RES/reads.txt"; } >> "$RES/summary.txt"
  else
    log "in-memory read workload failed"
  fi
fi
cp "$RES/summary.txt" "$RESULTS_BASE/latest.txt"
[ -f "$RES/insert_rate.png" ] && cp "$RES/insert_rate.png" "$RESULTS_BASE/latest.png"
cat "$RES/summary.txt"
