/**
 * The default guest's network start: at boot rcS runs busybox udhcpc on every Ethernet
 * interface the kernel found (virtio-net); udhcpc's event script, written here, sets the
 * address, the default route and /etc/resolv.conf from the lease and prints a marker. With
 * no DHCP server on the segment udhcpc goes on trying in the background and the boot is not
 * held up beyond three seconds.
 */

/** Boot markers of the network start (see scripts.ts MARKERS). */
export const NET_MARKERS = {
  /** "virtus-init: network eth0 up, address 10.0.2.15/24" */
  up: 'virtus-init: network ',
  /** "virtus-init: no DHCP answer on eth0 yet" */
  noLease: 'virtus-init: no DHCP answer on ',
} as const;

/** Applets a guest with a network needs (checked in the busybox binary at build time). */
export const NET_APPLETS = ['ip', 'udhcpc', 'wget', 'nc', 'ping', 'httpd', 'telnet', 'nslookup'];

/** Where the event script lives in the guest. */
export const UDHCPC_SCRIPT = 'etc/udhcpc.script';

/** Where the script that follows the VM generation lives in the guest. */
export const GENERATION_SCRIPT = 'etc/virtus-generation';

/** "virtus-init: eth0 has the new address 52:54:00:..." (a clone's NIC, read again after its reset). */
export const NEW_MAC_MARKER = 'virtus-init: new address on ';

/** busybox udhcpc's event script (it sets $interface, $ip, $mask as a prefix length, $router, $dns, $domain). */
export function udhcpcScript(): string {
  return `#!/bin/sh
# udhcpc event script of the virtus default guest, written by 'virtus guest fetch'.
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" dev "$interface"
    if [ -n "$router" ]; then
      while ip route del default dev "$interface" 2>/dev/null; do :; done
      for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    fi
    if [ -n "$dns" ]; then
      : > /etc/resolv.conf
      [ -n "$domain" ] && echo "search $domain" >> /etc/resolv.conf
      for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    fi
    [ "$1" = bound ] && echo "${NET_MARKERS.up}$interface up, address $ip/\${mask:-24}" > /dev/console
    ;;
esac
exit 0
`;
}

/** The part of rcS that brings the network up. */
export function netStart(): string {
  return `for dev in /sys/class/net/eth*; do
  [ -e "$dev" ] || continue
  i=\${dev##*/}
  ip link set "$i" up
  udhcpc -i "$i" -s /${UDHCPC_SCRIPT} -p "/run/udhcpc.$i.pid" -t 3 -T 1 -b >/dev/null 2>&1 || echo "${NET_MARKERS.noLease}$i yet"
done
`;
}

/**
 * The script that follows the VM generation, started in the background by rcS. Debian's
 * kernel tells a new generation (Linux's vmgenid driver: a restored snapshot, a received
 * migration, a clone) only in its log ("crng reseeded due to virtual machine fork") — it
 * sends no uevent — so the script reads /dev/kmsg, blocked until a message comes. On a new
 * generation the machine id is made anew, and a virtio-net device that asks for a reset
 * (DEVICE_NEEDS_RESET in its status: a clone's NIC has a new MAC address, which the driver
 * reads only at probe) is unbound and bound again, and its interface takes a lease under the
 * new address. A migrated machine's NICs keep their address and ask for nothing, so its
 * connections go on.
 */
export function generationScript(): string {
  return `#!/bin/sh
# Follows the VM generation of the virtus default guest (started by /etc/init.d/rcS).
drv=/sys/bus/virtio/drivers/virtio_net
generation() {
  tr -d - < /proc/sys/kernel/random/uuid > /etc/machine-id
  for dev in $drv/virtio*; do
    [ -e "$dev/status" ] || continue
    [ $(( $(cat "$dev/status") & 0x40 )) -ne 0 ] || continue
    id=\${dev##*/}
    for n in "$dev"/net/*; do
      [ -e "/run/udhcpc.\${n##*/}.pid" ] && kill "$(cat "/run/udhcpc.\${n##*/}.pid")" 2>/dev/null
    done
    echo "$id" > $drv/unbind
    echo "$id" > $drv/bind
    for n in /sys/bus/virtio/devices/"$id"/net/*; do
      i=\${n##*/}
      echo "${NEW_MAC_MARKER}$i: $(cat "$n/address")" > /dev/console
      ip link set "$i" up
      udhcpc -i "$i" -s /${UDHCPC_SCRIPT} -p "/run/udhcpc.$i.pid" -t 3 -T 1 -b >/dev/null 2>&1
    done
  done
}
cat /dev/kmsg | while read -r line; do
  case "$line" in
    *"virtual machine fork"*) generation ;;
  esac
done
`;
}

/** The part of rcS that gives the machine its identity: a machine id, and the generation script. */
export function identityStart(): string {
  return `[ -s /etc/machine-id ] || tr -d - < /proc/sys/kernel/random/uuid > /etc/machine-id
/${GENERATION_SCRIPT} </dev/null >/dev/null 2>&1 &
`;
}
