#!/bin/bash
# A/B of fractal.scan_prefetch (on = leaf read started before the filter
# page's and chain's reads; off = without) on the data directory that
# bench/run.sh --keep left, with the server in a 96 MB cgroup v1 as in the
# run.  Per round and workload (point, range): one pgbench run interleaving
# the "on" and "off" scripts (each transaction picks one at random), so both
# see the same cache state and machine moments; prints off/on mean latency
# (> 1 means prefetch is faster) and each script's counters.  WORKLOADS
# (default "point range") may also name miss: point lookups of k + 1 for an
# existing k (random bigints: practically always absent).
# usage: [WORKLOADS=...] [DROP_CACHES=1] ab.sh DATA_DIR [SECS] [ROUNDS]
set -eu
DATA=$1; SECS=${2:-60}; ROUNDS=${3:-3}
BIN=/usr/lib/postgresql/15/bin; PORT=54339; SOCK=$(mktemp -d /tmp/ab.XXXX); chmod 777 "$SOCK"
OUT=$(dirname "$0"); LOGD=$(mktemp -d /tmp/ablog.XXXX); chmod 777 "$LOGD"
mnt=$(awk '$3=="cgroup" && $4 ~ /(^|,)memory(,|$)/ {print $2; exit}' /proc/mounts)
rel=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
CG=$mnt$rel/fractal_ab.$$; mkdir "$CG"; echo 100663296 > "$CG/memory.limit_in_bytes"
trap 'runuser -u postgres -- $BIN/pg_ctl -D "$DATA" -m fast stop >/dev/null 2>&1; rmdir "$CG" 2>/dev/null; rm -rf "$SOCK" "$LOGD"' EXIT
# the kernel's page cache outside the cgroup (pages read by an earlier
# server, charged elsewhere) would serve reads the cgroup should not hold:
# with DROP_CACHES=1 it is emptied first, so the cgroup's limit holds
[ "${DROP_CACHES:-0}" = 1 ] && { sync; echo 3 > /proc/sys/vm/drop_caches; }
sh -c "echo \$\$ > '$CG/cgroup.procs' && exec runuser -u postgres -- $BIN/pg_ctl -D '$DATA' -o '-p $PORT -k $SOCK' -l $LOGD/pg.log -w start" >/dev/null
psqlc() { runuser -u postgres -- $BIN/psql -h "$SOCK" -p $PORT -U postgres -d bench -Atq "$@"; }
nk=$(psqlc -c "SELECT count(*) FROM bench_keys")
WORKLOADS=${WORKLOADS:-point range}
for w in $WORKLOADS; do
  for v in on off; do
    case $w in
      miss) src=point; edit='s/a = :k;/a = :k + 1;/' ;;
      *) src=$w; edit='' ;;
    esac
    { echo "SET fractal.scan_prefetch = $v;"; grep -v '^--' "$(dirname "$0")/../../${src}_select.sql" | sed "$edit"; } > "$LOGD/${w}_$v.sql"
  done
done
chmod 644 "$LOGD"/*.sql
counters() { psqlc -c "SELECT name || ' ' || value FROM fractal_counters() WHERE name ~ 'prefetch|blocks_read|bypass|probes'"; }
for r in $(seq 1 "$ROUNDS"); do
  for w in $WORKLOADS; do
    rm -f "$LOGD"/plog*
    before=$(counters); d0=$(awk '$3=="vda"{print $4}' /proc/diskstats)
    runuser -u postgres -- $BIN/pgbench -n -h "$SOCK" -p $PORT -U postgres -c 2 -j 2 -T "$SECS" \
      -D nkeys="$nk" -l --log-prefix="$LOGD/plog" -f "$LOGD/${w}_on.sql" -f "$LOGD/${w}_off.sql" bench >/dev/null 2>&1
    ratio=$(cat "$LOGD"/plog* | awk '{ n[$4]++; s[$4] += $3 }
        END { printf "on %d tx %.3f ms, off %d tx %.3f ms, off/on %.4f", n[0], s[0]/n[0]/1000, n[1], s[1]/n[1]/1000, (s[1]/n[1])/(s[0]/n[0]) }')
    d1=$(awk '$3=="vda"{print $4}' /proc/diskstats)
    echo "round $r $w: $ratio, disk reads (vda) per transaction $(awk -v a="$d0" -v b="$d1" -v r="$ratio" 'BEGIN { split(r, f, " "); printf "%.3f", (b - a) / (f[2] + f[7]) }')"
    paste <(echo "$before") <(counters) | awk '{ printf "    %s +%d\n", $1, $4 - $2 }'
  done
done
