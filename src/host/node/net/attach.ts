/**
 * `virtus run`'s network flags until the machine description takes them over: `--nic`,
 * `--netdev` and `--device virtio-net-device,netdev=ID[,mac=..]` become virtio-net devices
 * on the board, each over the backend its description names.
 */
import { VirtioNet } from '../../../devices/virtio/net/net.ts';
import { parseNetdevs, parseNic, type NicDesc } from '../../../net/nic.ts';
import { parseMac } from '../../../util/inet.ts';
import type { VirtioDevice } from '../../../devices/virtio/types.ts';
import { createNicBackend, type HostServices } from './index.ts';

/** parseArgs options of the network flags. */
export const NET_OPTIONS = {
  nic: { type: 'string', multiple: true },
  netdev: { type: 'string', multiple: true },
  device: { type: 'string', multiple: true },
} as const;

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
  return [...nics, ...parseNetdevs(v.netdev ?? [], v.device ?? [], nics.length)];
}

/** Creates each NIC's backend and device; `attach` plugs a device into the board. */
export async function attachNics(
  descs: NicDesc[],
  attach: (d: VirtioDevice) => void,
  services: HostServices,
): Promise<{ devices: VirtioNet[]; ports: number[][]; close(): void }> {
  const devices: VirtioNet[] = [];
  const ports: number[][] = [];
  const close = () => {
    for (const d of devices.splice(0)) d.backend.close();
  };
  try {
    for (const [i, desc] of descs.entries()) {
      const { backend, ports: p } = await createNicBackend(desc, services);
      const dev = new VirtioNet(backend, { name: `virtio-net${i}`, mac: parseMac(desc.mac)! });
      devices.push(dev);
      ports.push(p);
      attach(dev);
    }
  } catch (e) {
    close();
    throw e;
  }
  return { devices, ports, close };
}
