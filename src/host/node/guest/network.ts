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
  udhcpc -i "$i" -s /${UDHCPC_SCRIPT} -t 3 -T 1 -b >/dev/null 2>&1 || echo "${NET_MARKERS.noLease}$i yet"
done
`;
}
