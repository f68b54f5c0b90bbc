#!/usr/bin/env bash
# compat.sh - the compatibility matrix (issue 21): HAProxy 3.0, 3.2, 3.4 and
# etcd 3.5 from Debian's newer suites, cached outside the clone, and the
# integration suite run against each pair.
#
#   compat.sh bins            make sure every binary is in the cache
#   compat.sh test BIN        bins, then run.py --bin BIN on each pair
#
# What it gets (see docs/DESIGN.md, "The compatibility matrix"):
#   haproxy-3.0  Debian 13 (trixie)'s source tarball, built here with
#                make TARGET=linux-glibc USE_OPENSSL=1 USE_PCRE2=1 USE_PROMEX=1
#                against this machine's (Debian 12) libraries
#   haproxy-3.2  Debian sid's binary package      } run by sid's own dynamic
#   haproxy-3.4  Debian experimental's binary     } loader with sid's libc and
#                package                          } libraries, from a wrapper
#   etcd-3.5     Debian 13's etcd-server and etcd-client binary packages (they
#                run on Debian 12's libc as they are)
#
# Everything comes through a private apt state under the cache (its own
# sources list, lists and archive cache); the system's sources and package
# state are never changed. The mirror is the one the system's sources use.
#
# Cache: $SLOTSYNC_COMPAT_CACHE, default ~/.cache/slotsync/compat:
#   <name>-<debian version>/   one directory per binary, with what it was made from
#   bin/haproxy-3.0 bin/haproxy-3.2 bin/haproxy-3.4 bin/etcd-3.5 bin/etcdctl-3.5
#                              the stable entry points (small sh wrappers)
#   apt/                       the private apt state
# A wrapper that answers `-v` / `--version` with its version is kept as it is
# (no network); one that is missing or answers anything else is made again.
#
# Environment: SLOTSYNC_COMPAT_CACHE, COMPAT_MIRROR (a Debian mirror URL,
# default: the system's), COMPAT_PAIRS (space-separated haproxy+etcd pairs to
# run, default "3.0+3.5 3.2+3.5 3.4+3.5"), COMPAT_ALL=1 (every pair runs the
# whole suite; see COMPAT_SKIP), plus what run.py and the harness take.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${SLOTSYNC_COMPAT_CACHE:-${HOME:-/root}/.cache/slotsync/compat}
BINDIR=$CACHE/bin
APTDIR=$CACHE/apt
PYTHON=${PYTHON:-/usr/bin/python3}
MULTIARCH=x86_64-linux-gnu

# What the 3.0 build needs beyond integration/deps.sh's packages.
BUILD_PACKAGES="gcc make libc6-dev libssl-dev libpcre2-dev libcrypt-dev
curl xz-utils ca-certificates"

# sid's runtime for its haproxy packages: one package per library that
# haproxy 3.2/3.4 and those libraries need (the closure is checked after
# extraction with the loader's --list; a new dependency fails by name).
SID_LIBS="libc6 libcrypt1 libssl3t64 liblua5.4-0 libopentracing-c-wrapper0t64
libopentracing1 libstdc++6 libgcc-s1 libpcre2-8-0 libjemalloc2 zlib1g libzstd1"

DEFAULT_PAIRS="3.0+3.5 3.2+3.5 3.4+3.5"

log() { printf 'compat: %s\n' "$*" >&2; }
die() { printf 'compat: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- apt state

# The Debian mirror the system's own sources use for Debian (not security):
# from one-line (.list) or deb822 (.sources) files.
system_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk '$1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                print $i
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        # One stanza per record; its URIs if its Types has deb.
        awk 'BEGIN { RS = ""; FS = "\n" }
            {
                deb = 0; uris = ""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^Types:/ && $i ~ /[ \t]deb([ \t]|$)/) deb = 1
                    if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
                }
                if (deb) { n = split(uris, u, /[ \t]+/); for (j = 1; j <= n; j++) print u[j] }
            }' "$f"
    done
} 2>/dev/null

# The first of the system's mirrors that serves Debian itself.
debian_mirror() {
    system_mirror | grep -E '/debian/?$' | grep -v security | sed -n 1p
}

APT_OPTS=()
apt_ready=0

# Writes the private sources list and runs apt-get update on it, once per run.
apt_setup() {
    [ "$apt_ready" = 1 ] && return 0
    local mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    mirror=${COMPAT_MIRROR:-$(debian_mirror)}
    mirror=${mirror:-http://deb.debian.org/debian}
    mirror=${mirror%/}
    [ -r "$keyring" ] || die "$keyring not found (package debian-archive-keyring)"
    mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
    cat >"$APTDIR/sources.list" <<EOF
# written by slotsync integration/compat.sh; used only through -o Dir::Etc::sourcelist
deb [signed-by=$keyring] $mirror trixie main
deb-src [signed-by=$keyring] $mirror trixie main
deb [signed-by=$keyring] $mirror sid main
deb [signed-by=$keyring] $mirror experimental main
EOF
    APT_OPTS=(
        -o "Dir::Etc::sourcelist=$APTDIR/sources.list"
        -o Dir::Etc::sourceparts=/dev/null
        -o "Dir::State::Lists=$APTDIR/lists"
        -o "Dir::Cache=$APTDIR/cache"
        -o Dir::Etc::preferences=/dev/null
        -o Dir::Etc::preferencesparts=/dev/null
        -o APT::Architecture=amd64
        -o Acquire::Languages=none
        -o Acquire::Retries=3
    )
    # As root apt downloads as _apt, which cannot write to our directories.
    [ "$(id -u)" = 0 ] && APT_OPTS+=(-o APT::Sandbox::User=root)
    log "apt-get update (private state in $APTDIR, mirror $mirror)"
    apt-get "${APT_OPTS[@]}" -q update >"$APTDIR/update.log" 2>&1 ||
        { tail -n 20 "$APTDIR/update.log" >&2; die "apt-get update failed (log: $APTDIR/update.log)"; }
    apt_ready=1
}

# apt_download DIR PKG/SUITE...: the .debs into DIR.
apt_download() {
    local dir=$1; shift
    (cd "$dir" && apt-get "${APT_OPTS[@]}" -q download "$@") >"$dir/download.log" 2>&1 ||
        { tail -n 20 "$dir/download.log" >&2; die "apt-get download $* failed"; }
}

# deb_version DIR PKG: the Version of DIR/PKG_*.deb.
deb_version() {
    local f
    for f in "$1/$2"_*.deb; do
        [ -e "$f" ] || break
        dpkg-deb -f "$f" Version
        return 0
    done
    die "no $2 .deb in $1"
}

# ---------------------------------------------------------------- checks

# wrapper_ok WRAPPER ARG PREFIX: the wrapper exists and its ARG output
# starts with PREFIX (e.g. "HAProxy version 3.2.").
wrapper_ok() {
    local out
    [ -x "$1" ] || return 1
    # Whole output first: grep -q would close the pipe early (pipefail).
    out=$("$1" "$2" 2>/dev/null) || return 1
    printf '%s\n' "$out" | grep -q "^$3"
}

# write_wrapper NAME BODY: bin/NAME, atomically.
write_wrapper() {
    mkdir -p "$BINDIR"
    printf '#!/bin/sh\n# written by slotsync integration/compat.sh\n%s\n' "$2" >"$BINDIR/.$1.tmp"
    chmod 0755 "$BINDIR/.$1.tmp"
    mv -f "$BINDIR/.$1.tmp" "$BINDIR/$1"
}

# fresh_dir NAME: an empty work directory under the cache, removed on exit.
WORK=""
fresh_dir() {
    [ -n "$WORK" ] || { mkdir -p "$CACHE"; WORK=$(mktemp -d "$CACHE/.work.XXXXXX"); }
    rm -rf "${WORK:?}/$1"
    mkdir -p "$WORK/$1"
    printf '%s\n' "$WORK/$1"
}
cleanup() { [ -z "$WORK" ] || rm -rf "$WORK"; }
trap cleanup EXIT

# install_dir TMP FINAL: FINAL replaced by TMP.
install_dir() {
    rm -rf "$2"
    mv "$1" "$2"
}

# ---------------------------------------------------------------- haproxy 3.0

# Debian 13's upstream source tarball (the .orig.tar.gz of its source
# package), checked against the SHA256 in trixie's signed Sources index and
# built with the upstream makefile against this machine's libraries. Only the
# tarball: the mirror this was written on serves no .dsc or .debian.tar.xz for
# it, so Debian's patches are not applied (the replies slotsync reads are
# upstream's).
make_haproxy_30() {
    local w src line url file size sum version dest
    apt_setup
    w=$(fresh_dir haproxy-3.0)
    log "haproxy 3.0: downloading trixie's source tarball"
    line=$(apt-get "${APT_OPTS[@]}" -q source --print-uris haproxy/trixie 2>"$w/uris.log" |
        grep "^'.*\.orig\.tar\.[a-z0-9]*' " | sed -n 1p) ||
        { cat "$w/uris.log" >&2; die "trixie has no haproxy source tarball"; }
    read -r url file size sum <<<"$line"
    url=${url//\'/}
    case $file in haproxy_3.0.*.orig.tar.*) ;; *) die "trixie's haproxy source is $file, not 3.0";; esac
    case $sum in SHA256:*) sum=${sum#SHA256:} ;; *) die "no SHA256 for $file: $line";; esac
    curl -fsSL --retry 3 -o "$w/$file" "$url" || die "download of $url failed"
    [ "$(stat -c %s "$w/$file")" = "$size" ] || die "$file: size is not $size"
    printf '%s  %s\n' "$sum" "$w/$file" | sha256sum -c --quiet - || die "$file: SHA256 mismatch"
    version=${file#haproxy_}
    version=${version%.orig.tar.*}
    mkdir -p "$w/src"
    tar -xf "$w/$file" -C "$w/src" --strip-components=1 || die "tar -xf $file failed"
    src=$w/src
    log "haproxy 3.0: building $version (make TARGET=linux-glibc USE_OPENSSL=1 USE_PCRE2=1 USE_PROMEX=1)"
    if ! make -C "$src" -j"$(nproc)" TARGET=linux-glibc USE_OPENSSL=1 USE_PCRE2=1 \
            USE_PROMEX=1 >"$w/build.log" 2>&1; then
        tail -n 30 "$w/build.log" >&2
        die "haproxy $version build failed (log: $w/build.log)"
    fi
    mkdir -p "$w/out"
    cp "$src/haproxy" "$w/out/haproxy"
    cp "$w/build.log" "$w/out/"
    printf '%s %s sha256:%s\n' "$url" "$size" "$sum" >"$w/out/source.txt"
    "$w/out/haproxy" -vv >"$w/out/haproxy-vv.txt" 2>&1 ||
        die "the built haproxy does not run: $(head -n 3 "$w/out/haproxy-vv.txt")"
    dest=$CACHE/haproxy-$version
    install_dir "$w/out" "$dest"
    write_wrapper haproxy-3.0 "exec '$dest/haproxy' \"\$@\""
}

# ---------------------------------------------------------------- haproxy 3.2, 3.4

# make_haproxy_sid SERIES SUITE: SUITE's haproxy binary package with sid's
# libraries, started by sid's dynamic loader from the wrapper.
make_haproxy_sid() {
    local series=$1 suite=$2 w version dest lib p pkgs=() listing bad
    apt_setup
    w=$(fresh_dir "haproxy-$series")
    log "haproxy $series: downloading $suite's binary package and sid's libraries"
    for p in $SID_LIBS; do pkgs+=("$p/sid"); done
    apt_download "$w" "haproxy/$suite" "${pkgs[@]}"
    version=$(deb_version "$w" haproxy)
    case $version in "$series".*) ;; *) die "$suite's haproxy is $version, not $series";; esac
    mkdir -p "$w/out/root"
    for p in "$w"/*.deb; do
        dpkg-deb -x "$p" "$w/out/root" || die "dpkg-deb -x $p failed"
        printf '%s\n' "$(basename "$p")" >>"$w/out/packages.txt"
    done
    lib=$w/out/root/usr/lib/$MULTIARCH
    [ -x "$lib/ld-linux-x86-64.so.2" ] || die "no ld-linux-x86-64.so.2 in sid's libc6"
    # Every library must come from sid's tree, none from this machine's.
    listing=$("$lib/ld-linux-x86-64.so.2" --library-path "$lib" --list \
        "$w/out/root/usr/sbin/haproxy" 2>&1) || die "loader --list failed: $listing"
    bad=$(printf '%s\n' "$listing" | grep '=>' | grep -v "=> $w/out/root/" || true)
    [ -z "$bad" ] || die "haproxy $version needs libraries not in SID_LIBS: $bad"
    dest=$CACHE/haproxy-$version
    install_dir "$w/out" "$dest"
    lib=$dest/root/usr/lib/$MULTIARCH
    # --argv0 "$0": HAProxy's master re-executes argv[0] on reload, which
    # must be this wrapper again, not the loader or the bare binary.
    write_wrapper "haproxy-$series" "exec '$lib/ld-linux-x86-64.so.2' --library-path '$lib' --argv0 \"\$0\" '$dest/root/usr/sbin/haproxy' \"\$@\""
}

# ---------------------------------------------------------------- etcd 3.5

make_etcd_35() {
    local w version dest
    apt_setup
    w=$(fresh_dir etcd-3.5)
    log "etcd 3.5: downloading trixie's etcd-server and etcd-client"
    apt_download "$w" etcd-server/trixie etcd-client/trixie
    version=$(deb_version "$w" etcd-server)
    case $version in 3.5.*) ;; *) die "trixie's etcd-server is $version, not 3.5";; esac
    [ "$(deb_version "$w" etcd-client)" = "$version" ] ||
        die "trixie's etcd-client is not $version"
    mkdir -p "$w/out/root"
    for p in "$w"/*.deb; do
        dpkg-deb -x "$p" "$w/out/root" || die "dpkg-deb -x $p failed"
        printf '%s\n' "$(basename "$p")" >>"$w/out/packages.txt"
    done
    for p in etcd etcdctl; do
        [ -x "$w/out/root/usr/bin/$p" ] || die "no usr/bin/$p in trixie's etcd packages"
    done
    dest=$CACHE/etcd-$version
    install_dir "$w/out" "$dest"
    write_wrapper etcd-3.5 "exec '$dest/root/usr/bin/etcd' \"\$@\""
    write_wrapper etcdctl-3.5 "exec '$dest/root/usr/bin/etcdctl' \"\$@\""
}

# ---------------------------------------------------------------- bins

deps() {
    # shellcheck disable=SC2086 # one word per package
    sh "$HERE/deps.sh" $BUILD_PACKAGES
}

bins() {
    deps
    mkdir -p "$CACHE"
    # One maker at a time (other checkouts share the cache).
    exec 9>"$CACHE/.lock"
    flock -w 1200 9 || die "$CACHE/.lock held by another compat.sh for 20 minutes"
    wrapper_ok "$BINDIR/haproxy-3.0" -v "HAProxy version 3\.0\." || make_haproxy_30
    wrapper_ok "$BINDIR/haproxy-3.2" -v "HAProxy version 3\.2\." || make_haproxy_sid 3.2 sid
    wrapper_ok "$BINDIR/haproxy-3.4" -v "HAProxy version 3\.4\." || make_haproxy_sid 3.4 experimental
    if ! wrapper_ok "$BINDIR/etcd-3.5" --version "etcd Version: 3\.5\." ||
       ! wrapper_ok "$BINDIR/etcdctl-3.5" version "etcdctl version: 3\.5\."; then
        make_etcd_35
    fi
    local b
    for b in haproxy-3.0 haproxy-3.2 haproxy-3.4; do
        wrapper_ok "$BINDIR/$b" -v "HAProxy version ${b#haproxy-}" ||
            die "$BINDIR/$b does not answer -v with its version"
        printf '%-12s %s\n' "$b" "$("$BINDIR/$b" -v | sed -n 1p)"
    done
    wrapper_ok "$BINDIR/etcd-3.5" --version "etcd Version: 3\.5\." || die "$BINDIR/etcd-3.5 does not run"
    wrapper_ok "$BINDIR/etcdctl-3.5" version "etcdctl version: 3\.5\." || die "$BINDIR/etcdctl-3.5 does not run"
    printf '%-12s %s\n' etcd-3.5 "$("$BINDIR/etcd-3.5" --version | sed -n 1p)"
    printf '%-12s %s\n' etcdctl-3.5 "$("$BINDIR/etcdctl-3.5" version | sed -n 1p)"
    exec 9>&-
}

# ---------------------------------------------------------------- test

# run_pair PAIR BIN LOG: run.py on one pair, its output on stdout and in LOG
# (the runner's "N passed, N failed" line is its last line). Returns run.py's
# status.
run_pair() {
    local pair=$1 bin=$2 out=$3 hap etcd etcdctl rc b
    hap=$BINDIR/haproxy-${pair%+*}
    etcd=$BINDIR/etcd-${pair#*+}
    etcdctl=$BINDIR/etcdctl-${pair#*+}
    for b in "$hap" "$etcd" "$etcdctl"; do
        [ -x "$b" ] || die "pair $pair: no $b"
    done
    printf '\n== pair %s: %s, %s\n' "$pair" "$("$hap" -v | sed -n 1p)" \
        "$("$etcd" --version | sed -n 1p)"
    set +e
    HAPROXY_BIN=$hap ETCD_BIN=$etcd ETCDCTL_BIN=$etcdctl "$PYTHON" "$HERE/run.py" --bin "$bin" </dev/null 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    set -e
    return "$rc"
}

test_pairs() {
    local bin=${1:-} pair rc=0 started t0 t1 logdir summary=()
    [ -n "$bin" ] || die "usage: compat.sh test BIN"
    [ -x "$bin" ] || die "$bin is not an executable file"
    started=$(date +%s)
    bins
    logdir=$(mktemp -d "${TMPDIR:-/tmp}/slotsync-compat.XXXXXX")
    for pair in ${COMPAT_PAIRS:-$DEFAULT_PAIRS}; do
        t0=$(date +%s)
        if run_pair "$pair" "$bin" "$logdir/$pair.log"; then
            result=ok
        else
            result=FAILED
            rc=1
        fi
        t1=$(date +%s)
        summary+=("$(printf '  haproxy %s + etcd %s: %s (%s, %ds)' "${pair%+*}" "${pair#*+}" \
            "$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logdir/$pair.log" | tail -n 1 || echo 'no result line')" \
            "$result" $((t1 - t0)))")
    done
    printf '\ncompat matrix (logs in %s, %ds in all):\n' "$logdir" $(($(date +%s) - started))
    printf '%s\n' "${summary[@]}"
    return "$rc"
}

case ${1:-} in
    bins) bins ;;
    test) shift; test_pairs "$@" ;;
    *) echo "usage: compat.sh bins | test BIN" >&2; exit 2 ;;
esac
