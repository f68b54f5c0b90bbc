#!/bin/sh
# deps.sh - make sure the Debian packages slotsync builds and tests with are
# installed.
#
# All present: prints nothing, exits 0.
# Some missing, running as root: apt-get installs them, with service starts
# forbidden so that no system haproxy or etcd is left bound to the standard
# ports the tests could run into.
# Some missing, not root: prints the apt-get line to run and exits 1.

set -u

PACKAGES="gcc make pkg-config libcurl4-openssl-dev libjansson-dev libev-dev
libcriterion-dev libmicrohttpd-dev haproxy etcd-server etcd-client python3
curl socat ca-certificates libsystemd-dev scdoc man-db groff-base dnsmasq-base
python3-yaml chromium openssl wrk faketime libfaketime
prometheus libprotobuf-c-dev protobuf-c-compiler"
# Arguments: more packages the caller needs (integration/compat.sh's build).
[ $# -gt 0 ] && PACKAGES="$PACKAGES $*"

POLICY=/usr/sbin/policy-rc.d
policy_written=0

if ! command -v dpkg-query >/dev/null 2>&1; then
    # Not Debian: nothing here can check or install. Say what is needed and
    # let the build and the tests report what is really missing.
    # shellcheck disable=SC2086 # one word per package
    echo "deps.sh: dpkg-query not found; slotsync needs the equivalents of:" \
        $PACKAGES >&2
    exit 0
fi

# is_installed PKG: true if dpkg knows PKG as installed (for any
# architecture; a multi-arch package prints one line per architecture).
is_installed() {
    dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q ' installed$'
}

missing=""
for p in $PACKAGES; do
    is_installed "$p" || missing="$missing $p"
done
missing=${missing# }

[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing packages: $missing" >&2
    echo "sudo apt-get install -y --no-install-recommends $missing" >&2
    exit 1
fi

cleanup() {
    if [ "$policy_written" = 1 ]; then
        rm -f "$POLICY"
        policy_written=0
    fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# invoke-rc.d and deb-systemd-invoke ask policy-rc.d before starting a
# service; 101 means "not allowed". An existing policy (Docker images ship
# one) is left as it is.
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# written by slotsync integration/deps.sh\nexit 101\n' \
        >"$POLICY" || exit 1
    policy_written=1
    chmod 0755 "$POLICY" || exit 1
fi

echo "deps.sh: installing:$missing" >&2
# A failed update is not fatal: the package lists already there may do.
apt-get update || echo "deps.sh: apt-get update failed, trying the install anyway" >&2
# shellcheck disable=SC2086 # word splitting of the package list is intended
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    $missing || exit 1

cleanup

still=""
for p in $missing; do
    is_installed "$p" || still="$still $p"
done
if [ -n "$still" ]; then
    echo "deps.sh: still missing after apt-get install:$still" >&2
    exit 1
fi
exit 0
