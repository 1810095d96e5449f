# bench/paired.sh -- helpers shared by bench/reads.sh and
# bench/inserts_paired.sh (sourced, after test/cluster.sh).

# Each named variable must hold a positive integer; it is reported as the
# option --<name in lower case> otherwise, and the script exits.
fr_bench_require_positive() {
    local v
    for v in "$@"; do
        case "${!v}" in
            ''|*[!0-9]*|0) echo "--${v,,} must be a positive integer (got '${!v}')" >&2; exit 2 ;;
        esac
    done
}

# median of the numbers given as arguments (mean of the middle two if even)
fr_bench_median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2];
              else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# fr_bench_target LABEL RATIO NEED: one line "  LABEL >= NEED  MET (RATIO)",
# or MISSED when RATIO is below NEED
fr_bench_target() {
    awk -v l="$1" -v r="$2" -v x="$3" 'BEGIN {
        printf "  %s >= %s  %s (%.3f)\n", l, x, (r + 0 >= x + 0) ? "MET" : "MISSED", r }'
}

# fr_paired_ratio DIR CLIENTS SECS SCRIPT1 SCRIPT2 [pgbench options...]
# One pgbench run (as the cluster's owner, on $PGHOST/$PGPORT) that
# interleaves SCRIPT1 and SCRIPT2 (each transaction picks one at random),
# so both see the machine at the same moments; prints SCRIPT1's mean
# transaction latency over SCRIPT2's, from pgbench's per-transaction log
# written under DIR.  With closed-loop clients that is SCRIPT2's throughput
# over SCRIPT1's.  Returns nonzero when pgbench fails.
fr_paired_ratio() {
    local d=$1 clients=$2 secs=$3 s1=$4 s2=$5
    shift 5
    rm -rf "$d/plog.d"
    mkdir -m 777 "$d/plog.d"       # pgbench runs as the cluster's owner
    fr_as_owner "$FR_PGBIN/pgbench" -n -h "$PGHOST" -p "$PGPORT" -U postgres \
        -c "$clients" -j "$clients" -T "$secs" -l --log-prefix="$d/plog.d/plog" \
        "$@" -f "$s1" -f "$s2" postgres > /dev/null 2>&1 || return 1
    cat "$d"/plog.d/plog* | awk '{ n[$4]++; s[$4] += $3 }
        END { if (n[0] == 0 || n[1] == 0) print 0;
              else printf "%.4f", (s[0] / n[0]) / (s[1] / n[1]) }'
}
