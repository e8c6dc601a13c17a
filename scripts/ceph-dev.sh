#!/usr/bin/env bash
# A throwaway single-node Ceph (one mon, one memstore OSD) on loopback, for the tests of the
# RADOS block store. Everything a cluster writes lives under the directory given to `start`,
# so several can run side by side and `stop` leaves nothing behind.
#
#   scripts/ceph-dev.sh install            Debian packages, only those missing (needs root)
#   scripts/ceph-dev.sh link-python VENV   make Debian's `rados` module importable in VENV
#   scripts/ceph-dev.sh start DIR          bring a cluster up; prints DIR/ceph.conf
#   scripts/ceph-dev.sh stop DIR           kill the daemons whose pid files are in DIR; rm DIR
set -euo pipefail

PACKAGES=(ceph-mon ceph-mgr ceph-osd ceph-common python3-rados uuid-runtime)
RADOS_SO=/usr/lib/python3/dist-packages/rados.cpython-311-x86_64-linux-gnu.so
MEMSTORE_BYTES=$((1024 * 1024 * 1024))
WAIT_SECONDS=${CEPH_DEV_WAIT_SECONDS:-60}

die() {
    echo "ceph-dev: $*" >&2
    exit 1
}

missing_packages() {
    local package
    for package in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            echo "$package"
        fi
    done
}

cmd_install() {
    local missing
    missing=$(missing_packages)
    [ -z "$missing" ] && return 0
    [ "$(id -u)" = 0 ] || die "not root; cannot install: $missing"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086  # one word per package
    if ! apt-get install -y -q --no-install-recommends $missing >/dev/null; then
        apt-get update -q >/dev/null
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing >/dev/null
    fi
}

cmd_link_python() {
    local venv=${1:?usage: link-python VENV} folder purelib
    [ -e "$RADOS_SO" ] || die "$RADOS_SO is missing (run: $0 install)"
    [ -x "$venv/bin/python" ] || die "$venv is not a virtual environment"
    folder=$(cd "$venv" && pwd)/ceph-system
    mkdir -p "$folder"
    ln -sfn "$RADOS_SO" "$folder/$(basename "$RADOS_SO")"
    purelib=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "$folder" >"$purelib/nefos-ceph-system.pth"
}

free_port() {
    python3 - <<'EOF'
import socket

def free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True

if free(3300):
    print(3300)
else:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
EOF
}

write_conf() {
    local dir=$1 fsid=$2 port=$3
    cat >"$dir/ceph.conf" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$port
public_addr = 127.0.0.1
ms_bind_ipv6 = false
ms_bind_msgr1 = false
auth_allow_insecure_global_id_reclaim = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_app = false
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
paxos_propose_interval = 0.05
run_dir = $dir/run
pid_file = $dir/run/\$name.pid
admin_socket = $dir/run/\$name.asok
log_file = $dir/log/\$name.log
mon_cluster_log_file = $dir/log/cluster.log
crash_dir = $dir/crash
exporter_sock_dir = $dir/run

[mon]
mon_data = $dir/mon/\$id
keyring = $dir/mon/\$id/keyring

[mgr]
mgr_data = $dir/mgr/\$id
keyring = $dir/mgr/\$id/keyring

[osd]
osd_data = $dir/osd/\$id
keyring = $dir/osd/\$id/keyring
osd_objectstore = memstore
memstore_device_bytes = $MEMSTORE_BYTES

[client]
keyring = $dir/ceph.client.admin.keyring
EOF
}

cmd_start() {
    local dir=${1:?usage: start DIR} fsid port uuid id conf deadline
    [ "$(id -u)" = 0 ] || die "not root"
    command -v ceph-mon >/dev/null || die "ceph-mon is not installed (run: $0 install)"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    conf=$dir/ceph.conf
    if [ -e "$dir/run/mon.a.pid" ] && kill -0 "$(cat "$dir/run/mon.a.pid")" 2>/dev/null; then
        echo "$conf"  # already up
        return 0
    fi
    rm -rf "${dir:?}"/*
    mkdir -p "$dir"/{run,log,crash,mon/a,osd/0}
    fsid=$(uuidgen)
    port=$(free_port)
    write_conf "$dir" "$fsid" "$port"

    ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' \
        >/dev/null
    ceph-authtool --create-keyring "$dir/ceph.client.admin.keyring" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
    ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/ceph.client.admin.keyring" >/dev/null
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$dir/monmap" >/dev/null
    ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring"
    ceph-mon -c "$conf" -i a 2>"$dir/log/mon.a.stderr" \
        || die "mon.a did not start: $(cat "$dir/log/mon.a.stderr")"

    uuid=$(uuidgen)
    id=$(ceph -c "$conf" --connect-timeout 20 osd new "$uuid")
    [ "$id" = 0 ] || die "expected osd.0, got osd.$id"
    ceph -c "$conf" auth get-or-create osd.0 mon 'allow profile osd' mgr 'allow profile osd' \
        osd 'allow *' -o "$dir/osd/0/keyring" >/dev/null
    ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$uuid" 2>"$dir/log/osd-mkfs.err" >/dev/null \
        || die "osd mkfs failed: $(cat "$dir/log/osd-mkfs.err")"
    ceph-osd -c "$conf" -i 0 2>"$dir/log/osd.0.stderr" \
        || die "osd.0 did not start: $(cat "$dir/log/osd.0.stderr")"

    deadline=$((SECONDS + WAIT_SECONDS))
    until ceph -c "$conf" --connect-timeout 5 osd stat 2>/dev/null | grep -q " 1 up"; do
        [ "$SECONDS" -lt "$deadline" ] || die "osd.0 not up after ${WAIT_SECONDS}s; see $dir/log"
        sleep 0.2
    done
    ceph -c "$conf" osd pool create nefos 8 8 >/dev/null 2>"$dir/log/pool.stderr" \
        || die "cannot create pool nefos: $(cat "$dir/log/pool.stderr")"
    echo "$conf"
}

alive() {  # a zombie (exited, not yet reaped by init) counts as gone
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

cmd_stop() {
    local dir=${1:?usage: stop DIR} pidfile pid deadline
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd)
    # The OSD first, so that it does not wait on a mon that is already gone.
    for pidfile in "$dir"/run/osd.*.pid "$dir"/run/mgr.*.pid "$dir"/run/mon.*.pid; do
        [ -e "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        [[ "$pid" =~ ^[0-9]+$ ]] || continue
        # Only a ceph daemon started with this very directory's configuration.
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-c $dir/ceph.conf" || continue
        kill -TERM "$pid" 2>/dev/null || continue
        deadline=$((SECONDS + 5))
        while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
        if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    rm -rf "$dir"
}

case ${1:-} in
install) cmd_install ;;
link-python) cmd_link_python "${2:-}" ;;
start) cmd_start "${2:-}" ;;
stop) cmd_stop "${2:-}" ;;
*) die "usage: $0 install | link-python VENV | start DIR | stop DIR" ;;
esac
