# shellcheck shell=bash
# test/deps.sh -- the Debian packages fractal needs, and their installation.
# Sourced by setup.sh and test/run_all.sh.
#
#   fr_install_deps   installs whatever of FR_PACKAGES is missing (apt-get,
#                     as root or through sudo); returns non-zero on failure.

FR_PACKAGES=(postgresql-15 postgresql-server-dev-15 postgresql-client-15
             postgresql-contrib libzstd-dev libipc-run-perl make gcc gnuplot-nox)

fr_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "need root for: $*" >&2
        return 1
    fi
}

fr_install_deps() {
    local missing=() p
    for p in "${FR_PACKAGES[@]}"; do
        if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]; then
            missing+=("$p")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "all packages already installed"
        return 0
    fi
    echo "installing: ${missing[*]}"
    fr_as_root env DEBIAN_FRONTEND=noninteractive apt-get update &&
        fr_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${FR_PACKAGES[@]}"
}
