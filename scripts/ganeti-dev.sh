#!/usr/bin/env bash
# A throwaway single-node Google Ganeti (Debian's `ganeti` 3.0) for the tests of the compute
# backend, with the `fake` and `kvm` (QEMU TCG) hypervisors and the `file`, `diskless` and
# `ext` (volumes through nefos's ExtStorage provider) disk templates; qemu-utils for the
# volume tests' qemu-img and qemu-io. See docs/ganeti-dev.md and the Ganeti section of engines.md.
#
# Every Ganeti daemon, sshd and guest runs inside a network namespace `gnt` and a UTS
# namespace (/run/gnt-uts, hostname node1), so the machine's hostname, /etc/hosts and eth0
# are never touched. Inside them each command also gets private bind mounts (set up by
# `_inside`) of /etc/default/ganeti, /etc/ganeti and /root/.ssh, so the RAPI arguments, the
# file-storage-paths and the root ssh keys that `gnt-cluster init` writes stay out of the
# machine's own files. From the root namespace only a veth (198.18.0.254/24) reaches the
# cluster: RAPI at https://198.18.0.10:5080.
#
#   scripts/ganeti-dev.sh install               Debian packages, only those missing (root)
#   scripts/ganeti-dev.sh start                 bring the cluster up (or find it up); the last
#                                               lines are KEY=VALUE connection info, also in
#                                               /run/nefos-ganeti/env
#   scripts/ganeti-dev.sh status                that info if the cluster is up and healthy,
#                                               else exit status 1
#   scripts/ganeti-dev.sh stop                  tear everything down, leave nothing behind
#   scripts/ganeti-dev.sh guest-initramfs DIR   build a busybox initramfs for KVM guests in
#                                               DIR; prints KERNEL=... and INITRD=...
#   scripts/ganeti-dev.sh exec CMD...           run CMD inside the namespaces
#                                               (e.g. exec gnt-instance list)
set -euo pipefail

PACKAGES=(ganeti ganeti-os-noop qemu-system-x86 qemu-utils linux-image-amd64 busybox-static
    socat cpio curl openssh-server iproute2 e2fsprogs fdisk
    kbd console-data  # the guest's binary console keymaps (loadkeys -b; tests/ui/test_console_ganeti.py)
    ebtables iptables)  # the network data plane's rules (tests/network/test_dataplane.py)

NS=gnt
UTS=/run/gnt-uts
STATE=/run/nefos-ganeti
ENV_FILE=$STATE/env
LOCK=/run/nefos-ganeti.lock
SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")

NODE=node1.ganeti.test
NODE_SHORT=node1
NODE_IP=198.18.0.1
CLUSTER=cluster1.ganeti.test
CLUSTER_IP=198.18.0.10
HOST_IP=198.18.0.254
BRIDGE=gntbr0
PRIVATE_BRIDGE=gntbr1
HOST_VETH=gnthost      # root namespace end, 198.18.0.254/24
UPLINK_VETH=gntuplink  # its peer, a port of gntbr0 inside the namespace
RAPI_PORT=5080
RAPI_USER=nefos
RAPI_CERT=/var/lib/ganeti/rapi.pem
FILE_STORAGE=/srv/ganeti/file-storage
SHARED_FILE_STORAGE=/srv/ganeti/shared-file-storage
WAIT_SECONDS=${GANETI_DEV_WAIT_SECONDS:-60}

GUEST_MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
    failover net_failover virtio_net virtio_blk button evdev
    crc16 mbcache crc32c_generic jbd2 ext4)  # ext4 last: it needs crc32c loaded first
# The guest's console keymaps, NAME=console-data keymap: /etc/keymaps/NAME.bmap, compiled by
# `loadkeys -b` for busybox's loadkmap (the console page's layouts, keylayouts.js).
GUEST_KEYMAPS=(us=us de=de-latin1 fr=fr-latin1 gr=gr)

die() {
    echo "ganeti-dev: $*" >&2
    exit 1
}

log() {
    echo "ganeti-dev: $*" >&2
}

need_root() {
    [ "$(id -u)" = 0 ] || die "not root"
}

# ---------------------------------------------------------------------------------------
# install

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
    need_root
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086  # one word per package
    if ! apt-get install -y -q --no-install-recommends $missing >/dev/null; then
        apt-get update -q >/dev/null
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing >/dev/null
    fi
}

# ---------------------------------------------------------------------------------------
# the guest: a stock Debian kernel and a busybox-static initramfs

kernel_version() {  # the kernel that linux-image-amd64 depends on
    local version
    version=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null \
        | sed -n 's/^linux-image-\([^ ,]*\).*/\1/p')
    [ -n "$version" ] && [ -e "/boot/vmlinuz-$version" ] \
        || die "linux-image-amd64 is not installed (run: $0 install)"
    echo "$version"
}

write_guest_init() {
    cat >"$1" <<'EOF'
#!/bin/busybox sh
# A nefos test guest: modules, eth0 from the kernel command line (nefos.ip=ADDR/LEN,
# nefos.gw=ADDR), a ready line on ttyS0 every 2 s, power off on the ACPI power button.
# With a first disk, its first line (up to 64 bytes; letters, digits, " ._:=+/-") follows,
# NEFOS-GUEST-DISK <line>, so a test sees what an OS provider wrote onto the disk. If the
# disk (or its first partition) is an ext4 file system holding /nefos-guest-show, a list
# of paths, it is mounted read-only and each of those files is printed too, line by
# line, as NEFOS-GUEST-FILE <path> <line>, between NEFOS-GUEST-FILES-BEGIN and -END.
# Each line typed on the screen's terminal (tty1: what a VNC console types) comes back
# on ttyS0 as NEFOS-GUEST-TYPED <line>, byte for byte. The console's keymap is the
# kernel's (US) until a command such as `loadkmap </etc/keymaps/de.bmap` (us, de, fr, gr)
# loads another.
# With nefos.net=dhcp, every NIC (also one hot-plugged later) asks DHCP for its address
# (udhcpc -n -q) and, every 2 s, NEFOS-GUEST-LEASE <nic> mac=... ip=ADDR/LEN router=...
# (or NEFOS-GUEST-NOLEASE <nic> mac=...) and NEFOS-GUEST-SLAAC <nic> mac=... addr=ADDR/LEN
# for each global IPv6 address the kernel made from an RA. With nefos.shell=ttyS0 a shell
# reads commands from ttyS0, one per line, without echo; their output goes to ttyS0.
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in $(cat /modules.order); do
    insmod "/lib/modules/$module.ko" 2>/dev/null
done
ip=
gw=
net=
shell=
for arg in $(cat /proc/cmdline); do
    case $arg in
    nefos.ip=*) ip=${arg#nefos.ip=} ;;
    nefos.gw=*) gw=${arg#nefos.gw=} ;;
    nefos.net=*) net=${arg#nefos.net=} ;;
    nefos.shell=*) shell=${arg#nefos.shell=} ;;
    esac
done
ip link set lo up
if ip link set eth0 up 2>/dev/null; then
    [ -n "$ip" ] && ip addr add "$ip" dev eth0
    [ -n "$gw" ] && ip route add default via "$gw"
fi
power_button() {
    local event
    for event in /sys/class/input/event*; do
        [ "$(cat "$event/device/name" 2>/dev/null)" = "Power Button" ] || continue
        echo "/dev/input/${event##*/}"
        return 0
    done
    return 1
}
(
    device=
    until [ -c "$device" ]; do device=$(power_button) || sleep 0.2; done
    until dd if="$device" of=/dev/null bs=24 count=1 2>/dev/null; do sleep 1; done
    echo "NEFOS-GUEST-POWEROFF" >/dev/ttyS0
    sync
    poweroff -f
) &
(
    while IFS= read -r line; do
        printf 'NEFOS-GUEST-TYPED %s\n' "$line" >/dev/ttyS0
    done </dev/tty1
) &
if [ "$shell" = ttyS0 ]; then
    stty -F /dev/ttyS0 -echo 2>/dev/null
    (
        while read -r line; do eval "$line" </dev/null; done </dev/ttyS0 >/dev/ttyS0 2>&1
    ) &
fi
cat >/bin/nefos-udhcpc <<'SCRIPT'
#!/bin/sh
# udhcpc's hook: the address on the NIC, the first NIC's router as the default route,
# and the lease in /tmp/lease.<nic> for the console. A new address is announced
# (unsolicited ARP, as distributions' DHCP clients do), so peers that knew it at another
# MAC (a floating IP that moved here) learn the new one at once.
case $1 in
bound | renew)
    ip addr add "$ip/$mask" dev "$interface" 2>/dev/null
    [ "$1" = bound ] && arping -U -c 2 -w 3 -I "$interface" "$ip" >/dev/null 2>&1 &
    if [ -n "$router" ] && [ "$interface" = eth0 ]; then
        ip route replace default via "${router%% *}" dev "$interface"
    fi
    echo "ip=$ip/$mask router=${router:-none} dns=${dns:-none}" \
        "hostname=${hostname:-none} domain=${domain:-none} server=${serverid:-none}" \
        >"/tmp/lease.$interface"
    ;;
esac
exit 0
SCRIPT
chmod 755 /bin/nefos-udhcpc
dhcp_new_nics() {  # once per NIC, each in the background: a slow one delays no other
    local path nic
    for path in /sys/class/net/eth*; do
        nic=${path##*/}
        [ -e "$path" ] && [ ! -e "/tmp/dhcp.$nic" ] || continue
        : >"/tmp/dhcp.$nic"
        ip link set "$nic" up
        (
            udhcpc -i "$nic" -s /bin/nefos-udhcpc -n -q -t 10 -T 2 >/dev/null 2>&1 \
                || echo failed >"/tmp/dhcp.$nic"
        ) &
    done
}
show_network() {
    local path nic nicmac address
    for path in /sys/class/net/eth*; do
        nic=${path##*/}
        nicmac=$(cat "$path/address" 2>/dev/null)
        if [ -s "/tmp/lease.$nic" ]; then
            echo "NEFOS-GUEST-LEASE $nic mac=$nicmac $(cat "/tmp/lease.$nic")"
        elif [ -s "/tmp/dhcp.$nic" ]; then
            echo "NEFOS-GUEST-NOLEASE $nic mac=$nicmac"
        fi
        for address in $(ip -6 addr show dev "$nic" 2>/dev/null \
            | awk '/inet6/ && / scope global/ && !/tentative/ {print $2}'); do
            echo "NEFOS-GUEST-SLAAC $nic mac=$nicmac addr=$address"
        done
    done
}
[ "$net" = dhcp ] && dhcp_new_nics
mac=$(cat /sys/class/net/eth0/address 2>/dev/null)
mkdir -p /guest
shown=
for device in /dev/vda1 /dev/vda; do
    [ -b "$device" ] && mount -t ext4 -o ro "$device" /guest 2>/dev/null || continue
    [ -f /guest/nefos-guest-show ] && shown=yes && break
    umount /guest
done
show_files() {
    echo "NEFOS-GUEST-FILES-BEGIN"
    while read -r path; do
        [ -n "$path" ] || continue
        if [ ! -f "/guest$path" ]; then
            echo "NEFOS-GUEST-FILE $path <missing>"
            continue
        fi
        while IFS= read -r line || [ -n "$line" ]; do
            echo "NEFOS-GUEST-FILE $path $line"
        done <"/guest$path"
    done </guest/nefos-guest-show
    echo "NEFOS-GUEST-FILES-END"
}
while :; do
    echo "NEFOS-GUEST-READY ip=${ip:-none} mac=${mac:-none}" >/dev/ttyS0
    if [ -b /dev/vda ]; then
        line=$(head -c 64 /dev/vda | head -n 1 | tr -cd 'A-Za-z0-9 ._:=+/-')
        echo "NEFOS-GUEST-DISK ${line:-<empty>}" >/dev/ttyS0
    fi
    [ -n "$shown" ] && show_files >/dev/ttyS0
    if [ "$net" = dhcp ]; then
        dhcp_new_nics
        show_network >/dev/ttyS0
    fi
    sleep 2
done
EOF
}

cmd_guest_initramfs() {
    local dir=${1:?usage: guest-initramfs DIR} version root module path keymap
    version=$(kernel_version)
    [ -x /bin/busybox ] || die "busybox-static is not installed (run: $0 install)"
    command -v loadkeys >/dev/null && [ -d /usr/share/keymaps ] \
        || die "kbd or console-data is not installed (run: $0 install)"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    root=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$root'" RETURN
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules,etc/keymaps}
    cp /bin/busybox "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    : >"$root/modules.order"
    for module in "${GUEST_MODULES[@]}"; do
        path=$(modinfo -k "$version" -n "$module") || die "kernel module $module not found"
        case $path in
        *.ko) cp "$path" "$root/lib/modules/$module.ko" ;;
        *.ko.xz) xz -dc "$path" >"$root/lib/modules/$module.ko" ;;
        *.ko.zst) zstd -qdc "$path" >"$root/lib/modules/$module.ko" ;;
        *) continue ;;  # built in
        esac
        echo "$module" >>"$root/modules.order"
    done
    for keymap in "${GUEST_KEYMAPS[@]}"; do
        loadkeys -b "${keymap#*=}" </dev/null >"$root/etc/keymaps/${keymap%%=*}.bmap" \
            || die "loadkeys -b ${keymap#*=} failed"
    done
    write_guest_init "$root/init"
    chmod 755 "$root/init"
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$dir/initrd.img.tmp"
    mv "$dir/initrd.img.tmp" "$dir/initrd.img"
    echo "KERNEL=/boot/vmlinuz-$version"
    echo "INITRD=$dir/initrd.img"
}

# ---------------------------------------------------------------------------------------
# running things inside the namespaces

# Inside `ip netns exec` (a fresh mount namespace, slave to the machine's, with
# /etc/netns/gnt/hosts bound on /etc/hosts): our private files, then the UTS namespace.
cmd_inside() {
    if [ -d "$STATE/etc-ganeti" ]; then
        mount --bind "$STATE/etc-ganeti" /etc/ganeti
        mount --bind "$STATE/default-ganeti" /etc/default/ganeti
        mount --bind "$STATE/root-ssh" /root/.ssh
    fi
    exec nsenter --uts="$UTS" -- "$@"
}

in_ns() {
    ip netns exec "$NS" bash "$SCRIPT" _inside "$@"
}

cmd_exec() {
    [ $# -gt 0 ] || die "usage: exec CMD..."
    need_root
    [ -e "/run/netns/$NS" ] || die "namespace $NS does not exist (run: $0 start)"
    in_ns "$@"
}

# ---------------------------------------------------------------------------------------
# start

rapi_healthy() {
    local password=$1
    curl -sfk --max-time 5 -u "$RAPI_USER:$password" \
        "https://$CLUSTER_IP:$RAPI_PORT/2/info" >/dev/null 2>&1
}

env_value() {
    sed -n "s/^$1=//p" "$ENV_FILE" 2>/dev/null
}

cmd_status() {
    local password
    [ -e "/run/netns/$NS" ] && [ -s "$ENV_FILE" ] || return 1
    password=$(env_value RAPI_PASSWORD)
    [ -n "$password" ] && rapi_healthy "$password" || return 1
    cat "$ENV_FILE"
}

remember_created() {  # a directory outside our state dir that stop must remove again
    [ -e "$1" ] && return 0
    mkdir -p "$1"
    echo "$1" >>"$STATE/created"
}

setup_network() {
    ip netns add "$NS"
    touch "$UTS"
    unshare --uts="$UTS" hostname "$NODE_SHORT"

    remember_created /etc/netns
    mkdir -p "/etc/netns/$NS"
    cat >"/etc/netns/$NS/hosts" <<EOF
127.0.0.1 localhost
$NODE_IP $NODE $NODE_SHORT
$CLUSTER_IP $CLUSTER ${CLUSTER%%.*}
198.18.0.254 host.ganeti.test host
EOF
    for i in $(seq 1 20); do
        echo "198.18.0.$((100 + i)) snf-test-$i.ganeti.test snf-test-$i"
    done >>"/etc/netns/$NS/hosts"

    ip -n "$NS" link set lo up
    ip -n "$NS" link add "$BRIDGE" type bridge
    ip -n "$NS" link set "$BRIDGE" type bridge stp_state 0 forward_delay 0
    ip -n "$NS" addr add "$NODE_IP/24" dev "$BRIDGE"
    ip link add "$HOST_VETH" type veth peer name "$UPLINK_VETH"
    ip link set "$UPLINK_VETH" netns "$NS"
    ip -n "$NS" link set "$UPLINK_VETH" master "$BRIDGE" up
    ip addr add "$HOST_IP/24" dev "$HOST_VETH"
    ip link set "$HOST_VETH" up
    ip -n "$NS" link set "$BRIDGE" up

    # The private network's bridge: no address, a veth pair for carrier.
    ip -n "$NS" link add "$PRIVATE_BRIDGE" type bridge
    ip -n "$NS" link set "$PRIVATE_BRIDGE" type bridge stp_state 0 forward_delay 0
    ip -n "$NS" link add gntc1a type veth peer name gntc1b
    ip -n "$NS" link set gntc1a master "$PRIVATE_BRIDGE" up
    ip -n "$NS" link set gntc1b up
    ip -n "$NS" link set "$PRIVATE_BRIDGE" up
}

setup_private_files() {
    # /etc/ganeti as the package left it, plus file-storage-paths.
    cp -a /etc/ganeti "$STATE/etc-ganeti"
    printf '%s\n' "$FILE_STORAGE" "$SHARED_FILE_STORAGE" >"$STATE/etc-ganeti/file-storage-paths"
    sed 's/^RAPI_ARGS=.*/RAPI_ARGS="-b 0.0.0.0 --require-authentication"/' /etc/default/ganeti \
        >"$STATE/default-ganeti"
    grep -q '^RAPI_ARGS="-b 0.0.0.0' "$STATE/default-ganeti" \
        || echo 'RAPI_ARGS="-b 0.0.0.0 --require-authentication"' >>"$STATE/default-ganeti"
    install -d -m 700 "$STATE/root-ssh"
    if [ ! -d /root/.ssh ]; then  # the mount point for our private copy
        remember_created /root/.ssh
        chmod 700 /root/.ssh
    fi
    remember_created /srv/ganeti
    remember_created "$FILE_STORAGE"
    remember_created "$SHARED_FILE_STORAGE"
    remember_created /run/sshd
}

start_sshd() {
    in_ns /usr/sbin/sshd -o "ListenAddress=$NODE_IP" -o "PidFile=$STATE/sshd.pid" \
        -o UseDNS=no -o PermitRootLogin=prohibit-password -o PasswordAuthentication=no \
        </dev/null >>"$STATE/start.log" 2>&1 || die "sshd did not start; see $STATE/start.log"
}

write_rapi_users() {
    local password=$1
    install -d -m 750 -o gnt-rapi -g gnt-masterd /var/lib/ganeti/rapi
    (umask 027 && echo "$RAPI_USER $password write" >/var/lib/ganeti/rapi/users.tmp)
    chown gnt-rapi:gnt-masterd /var/lib/ganeti/rapi/users.tmp
    chmod 640 /var/lib/ganeti/rapi/users.tmp
    mv /var/lib/ganeti/rapi/users.tmp /var/lib/ganeti/rapi/users
}

write_env() {
    local password=$1 kernel=$2 initrd=$3
    cat >"$ENV_FILE.tmp" <<EOF
RAPI_URL=https://$CLUSTER_IP:$RAPI_PORT
RAPI_USER=$RAPI_USER
RAPI_PASSWORD=$password
RAPI_CERT=$RAPI_CERT
NODE=$NODE
CLUSTER=$CLUSTER
BRIDGE=$BRIDGE
PRIVATE_BRIDGE=$PRIVATE_BRIDGE
NETWORK=198.18.0.0/24
GATEWAY=$NODE_IP
FILE_STORAGE_DIR=$FILE_STORAGE
KVM_KERNEL=$kernel
KVM_INITRD=$initrd
EXEC=$SCRIPT exec
EOF
    chmod 600 "$ENV_FILE.tmp"
    mv "$ENV_FILE.tmp" "$ENV_FILE"
}

enable_ext() {  # no-op when ext is enabled already
    in_ns gnt-cluster info | grep -q "enabled disk templates:.*ext" && return 0
    in_ns gnt-cluster modify --enabled-disk-templates=file,diskless,ext \
        --ipolicy-disk-templates=file,diskless,ext </dev/null >>"$STATE/start.log" 2>&1
}

cmd_start() {
    local password guest kernel initrd deadline t0
    need_root
    command -v gnt-cluster >/dev/null || die "ganeti is not installed (run: $0 install)"
    t0=$SECONDS
    if cmd_status 2>/dev/null; then
        enable_ext  # a cluster started before ext was in the list
        return 0  # already up
    fi
    if [ -e "/run/netns/$NS" ] || [ -e "$STATE" ] || [ -e "$UTS" ]; then
        log "leftovers of an earlier cluster; cleaning up first"
        cmd_stop
    fi
    [ -e /var/lib/ganeti/config.data ] \
        && die "/var/lib/ganeti/config.data exists: a cluster not started by this script?"
    install -d -m 700 "$STATE"
    : >"$STATE/created"
    rm -rf /var/log/ganeti/*
    install -d -m 750 /var/log/ganeti/extstorage  # ExtStorage providers log there

    guest=$(cmd_guest_initramfs "$STATE/guest")
    kernel=$(sed -n 's/^KERNEL=//p' <<<"$guest")
    initrd=$(sed -n 's/^INITRD=//p' <<<"$guest")

    setup_network
    setup_private_files
    start_sshd

    password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    write_rapi_users "$password"

    log "gnt-cluster init"
    if ! in_ns gnt-cluster init \
        --enabled-hypervisors=fake,kvm \
        --enabled-disk-templates=file,diskless,ext \
        --ipolicy-disk-templates=file,diskless,ext \
        --ipolicy-bounds-specs=min:disk-size=64,cpu-count=1,disk-count=0,memory-size=32,nic-count=0,spindle-use=0/max:disk-size=1048576,cpu-count=8,disk-count=16,memory-size=32768,nic-count=8,spindle-use=12 \
        --file-storage-dir="$FILE_STORAGE" \
        --master-netdev="$BRIDGE" --master-netmask=24 \
        --nic-parameters="mode=bridged,link=$BRIDGE" \
        --no-etc-hosts \
        -H "kvm:kernel_path=$kernel,initrd_path=$initrd,kvm_path=/usr/bin/qemu-system-x86_64,kvm_flag=,serial_console=true,vnc_bind_address=0.0.0.0" \
        "$CLUSTER" </dev/null >>"$STATE/start.log" 2>&1; then
        die "gnt-cluster init failed: $(tail -20 "$STATE/start.log")"
    fi

    # rapi reads the users file at start and again on change (inotify); wait for both.
    write_rapi_users "$password"
    deadline=$((SECONDS + WAIT_SECONDS))
    until rapi_healthy "$password"; do
        [ "$SECONDS" -lt "$deadline" ] \
            || die "RAPI not answering after ${WAIT_SECONDS}s; see /var/log/ganeti/rapi-daemon.log"
        sleep 0.2
    done
    write_env "$password" "$kernel" "$initrd"
    log "up in $((SECONDS - t0))s"
    cat "$ENV_FILE"
}

# ---------------------------------------------------------------------------------------
# stop

alive() {  # a zombie (exited, not yet reaped by init) counts as gone
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

kill_namespace_processes() {  # everything still running in our network namespace
    local pid pids deadline
    [ -e "/run/netns/$NS" ] || return 0
    pids=$(ip netns pids "$NS" 2>/dev/null || true)
    [ -n "$pids" ] || return 0
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    deadline=$((SECONDS + 5))
    for pid in $pids; do
        while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
        if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
}

cmd_stop() {
    local path
    need_root
    if [ ! -e "$STATE" ] && [ ! -e "/run/netns/$NS" ] && [ ! -e "$UTS" ]; then
        return 0  # nothing of ours is up
    fi
    # The graceful way (remove instances, `gnt-cluster destroy`, `/etc/init.d/ganeti stop`)
    # takes 12 to 25 s here: start-stop-daemon waits about 2 s per daemon for PID 1 to reap
    # it. Everything below wipes the same state anyway, so it is only done on request.
    if [ "${GANETI_DEV_GRACEFUL:-0}" = 1 ] && [ -e "/run/netns/$NS" ] && [ -e "$UTS" ]; then
        if [ -e /var/lib/ganeti/config.data ]; then
            local name
            for name in $(timeout 20 bash "$SCRIPT" exec gnt-instance list --no-headers -o name \
                2>/dev/null); do
                timeout 60 bash "$SCRIPT" exec gnt-instance remove --force \
                    --shutdown-timeout=0 --ignore-failures "$name" >/dev/null 2>&1 || true
            done
            timeout 60 bash "$SCRIPT" exec gnt-cluster destroy --yes-do-it >/dev/null 2>&1 || true
        fi
        timeout 60 bash "$SCRIPT" exec /etc/init.d/ganeti stop >/dev/null 2>&1 || true
    fi
    kill_namespace_processes  # the Ganeti daemons, sshd, QEMU: all in parallel
    ip link del "$HOST_VETH" 2>/dev/null || true
    if [ -e "/run/netns/$NS" ]; then ip netns del "$NS"; fi
    if [ -e "$UTS" ]; then
        umount "$UTS" 2>/dev/null || true
        rm -f "$UTS"
    fi
    rm -rf "/etc/netns/$NS"
    # Ganeti's state; the logs stay in /var/log/ganeti until the next start.
    rm -rf /var/lib/ganeti/* /var/run/ganeti/*
    rm -rf "${FILE_STORAGE:?}"/* "${SHARED_FILE_STORAGE:?}"/*
    if [ -e "$STATE/created" ]; then
        tac "$STATE/created" | while read -r path; do  # directories, children first
            [ -n "$path" ] && { rmdir "$path" 2>/dev/null || log "left $path: not empty"; }
        done
    fi
    rm -rf "$STATE"
}

# ---------------------------------------------------------------------------------------

with_lock() {
    exec 9>"$LOCK"
    flock -w 300 9 || die "another ganeti-dev.sh start/stop holds $LOCK"
    "$@"
}

case ${1:-} in
install) cmd_install ;;
start) with_lock cmd_start ;;
stop) with_lock cmd_stop ;;
status) cmd_status ;;
guest-initramfs) cmd_guest_initramfs "${2:-}" ;;
exec) shift && cmd_exec "$@" ;;
_inside) shift && cmd_inside "$@" ;;
*) die "usage: $0 install | start | status | stop | guest-initramfs DIR | exec CMD..." ;;
esac
