/**
 * The network flags of the machine flags (machine-flags.ts): `--nic`, `--netdev` and
 * `--device virtio-net-device,netdev=ID[,mac=..]` become the NICs of a MachineSpec, each with
 * the backend its description names.
 */
import { parseNetdevs, parseNic, type NicDesc } from '../../../net/nic.ts';

/** Their --help lines. */
export const NET_HELP = `  --nic user[,hostfwd=tcp:127.0.0.1:HPORT-:GPORT][,restrict=on][,mac=MAC]
                       a virtio-net NIC behind a NAT (guest 10.0.2.15, router and
                       host 10.0.2.2, DNS 10.0.2.3 relayed to the host's resolver or
                       resolver=HOST:PORT); hostfwd forwards host ports in (tcp|udp)
  --nic switch=unix:PATH|tcp:HOST:PORT
                       a NIC plugged into 'virtus switch'
  --nic stream,addr.type=inet|unix,...[,server=on] / --nic dgram,remote.type=inet,...
                       a NIC on QEMU 7.2's -netdev stream / dgram (same keys; also
                       as --netdev with --device virtio-net-device,netdev=ID,mac=MAC)`;

/** The NIC descriptions the flags give, in order (--nic first, then --netdev). */
export function nicDescs(v: { nic?: string[]; netdev?: string[]; device?: string[] }): NicDesc[] {
  const nics = (v.nic ?? []).map((t, i) => parseNic(t, { flag: '--nic', index: i }));
  // Only the NIC models: -device also names disks and folders (machine-flags.ts takes those).
  const devices = (v.device ?? []).filter((d) => /^(driver=)?virtio-net-device(,|$)/.test(d));
  return [...nics, ...parseNetdevs(v.netdev ?? [], devices, nics.length)];
}
