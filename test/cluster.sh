# shellcheck shell=bash
# test/cluster.sh -- throwaway PostgreSQL 15 clusters for tests and demos.
#
# Source this file, then:
#   fr_cluster_start NAME PORT [extra postgresql.conf lines...]
#       initdb + start a private cluster in /tmp/fractal-test-NAME (owned by
#       the postgres OS user), listening only on a unix socket in that
#       directory.  Exports PGHOST, PGPORT, PGUSER=postgres (and
#       FR_CLUSTER_DIR / FR_PGDATA / FR_CLUSTER_LOG) for the caller.
#   fr_cluster_stop NAME
#       stop it (fast, falling back to immediate) and delete its directory.
#   fr_cluster_cleanup_all
#       stop + delete every cluster started by this shell; meant for
#       `trap fr_cluster_cleanup_all EXIT`.
#   fr_pg CMD [ARGS...]
#       run a PostgreSQL binary (from $FR_PGBIN) as the cluster owner.
#
# Works when run as root (everything server-side runs through
# `runuser -u postgres --`) and when run as any other user (then that user
# owns the cluster; the database superuser is still called "postgres").
# Durability settings are left at their defaults (fsync=on): crash tests
# depend on them.

FR_PGBIN=${FR_PGBIN:-/usr/lib/postgresql/15/bin}
FR_CLUSTER_ROOT=${FR_CLUSTER_ROOT:-/tmp}
# keep the list if this file is sourced twice
declare -p FR_CLUSTERS_STARTED >/dev/null 2>&1 || declare -ga FR_CLUSTERS_STARTED=()

# Run a command as the OS user that owns the clusters.
fr_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

fr_pg() {
    local bin=$1; shift
    fr_as_owner "$FR_PGBIN/$bin" "$@"
}

fr_cluster_dir() {
    printf '%s/fractal-test-%s\n' "$FR_CLUSTER_ROOT" "$1"
}

# Stop whatever runs in DIR/data (quietly), trying fast then immediate.
_fr_cluster_halt() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] || return 0
    fr_pg pg_ctl -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
        fr_pg pg_ctl -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
        true
}

fr_cluster_start() {
    if [ $# -lt 2 ]; then
        echo "usage: fr_cluster_start NAME PORT [postgresql.conf lines...]" >&2
        return 2
    fi
    local name=$1 port=$2; shift 2
    local dir; dir=$(fr_cluster_dir "$name")

    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        echo "fr_cluster_start: OS user 'postgres' does not exist (is postgresql-15 installed?)" >&2
        return 1
    fi

    # Leftover from an earlier, killed run?  Get rid of it.
    if [ -e "$dir" ]; then
        _fr_cluster_halt "$dir"
        rm -rf "$dir"
    fi
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$dir"
    fi

    if ! fr_pg initdb -D "$dir/data" -U postgres --auth=trust -E UTF8 \
            --locale=C >"$dir/initdb.log" 2>&1; then
        echo "fr_cluster_start: initdb failed for '$name':" >&2
        cat "$dir/initdb.log" >&2
        return 1
    fi

    {
        echo ""
        echo "# --- fractal test cluster '$name' ---"
        echo "port = $port"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir'"
        echo "max_prepared_transactions = 10"
        echo "log_line_prefix = '%m [%p] %q%a '"
        local line
        for line in "$@"; do
            echo "$line"
        done
    } | fr_as_owner tee -a "$dir/data/postgresql.conf" >/dev/null

    if ! fr_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null; then
        echo "fr_cluster_start: server '$name' failed to start; log:" >&2
        tail -n 50 "$dir/server.log" >&2 || true
        return 1
    fi

    FR_CLUSTERS_STARTED+=("$name")
    export PGHOST=$dir PGPORT=$port PGUSER=postgres
    export FR_CLUSTER_DIR=$dir FR_PGDATA=$dir/data FR_CLUSTER_LOG=$dir/server.log
    unset PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS
    return 0
}

fr_cluster_stop() {
    local name=$1
    local dir; dir=$(fr_cluster_dir "$name")
    if [ -e "$dir" ]; then
        _fr_cluster_halt "$dir"
        rm -rf "$dir"
    fi
    local kept=() n
    for n in "${FR_CLUSTERS_STARTED[@]}"; do
        [ "$n" = "$name" ] || kept+=("$n")
    done
    FR_CLUSTERS_STARTED=("${kept[@]}")
    return 0
}

fr_cluster_cleanup_all() {
    local n
    for n in "${FR_CLUSTERS_STARTED[@]}"; do
        fr_cluster_stop "$n"
    done
    return 0
}
