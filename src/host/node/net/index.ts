/**
 * Node's network backends: `createNicBackend` turns a NIC description (src/net/nic.ts) into a
 * NetBackend over host sockets, ready before the machine starts (hostfwd listeners bound,
 * a stream client connected or a stream server listening), or a one-line VirtusError.
 */
import type { NetBackend } from '../../../net/backend.ts';
import type { NicDesc } from '../../../net/nic.ts';
import { UserNet } from '../../../net/user/nat.ts';
import { nodeNatHost, openHostFwd } from './nat-host.ts';
import { openDgramLink, openStreamLink } from './link.ts';

/** What a backend needs from the program running the machine. */
export interface HostServices {
  /** Wakes the runner (frames for the guest arrived while it idles). */
  wake(): void;
  /** A one-line warning for stderr. */
  warn(line: string): void;
}

/** A backend and what its creation opened on the host. */
export interface NicBackend {
  backend: NetBackend;
  /** Host ports bound for hostfwd rules, in rule order (the real port when a rule asked for 0). */
  ports: number[];
}

/** Creates the backend a NIC description names. */
export async function createNicBackend(desc: NicDesc, services: HostServices): Promise<NicBackend> {
  if (desc.kind === 'user') {
    const nat = new UserNet(desc.options, desc.mac, nodeNatHost(desc.options, services));
    const fwd = await openHostFwd(nat, desc.options.hostfwd);
    const timer = setInterval(() => nat.tick(), 200);
    timer.unref();
    const close = nat.close.bind(nat);
    nat.close = () => {
      clearInterval(timer);
      fwd.close();
      close();
    };
    return { backend: nat, ports: fwd.ports };
  }
  if (desc.kind === 'stream') return { backend: await openStreamLink(desc.options, services), ports: [] };
  return { backend: await openDgramLink(desc.options, services), ports: [] };
}
