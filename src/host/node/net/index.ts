/**
 * Node's network backends: `createNicBackend` turns a NIC description (src/net/nic.ts) into a
 * NetBackend over host sockets, ready before the machine starts (hostfwd listeners bound,
 * a stream client connected or a stream server listening), or a one-line VirtusError.
 */
import type { NetBackend } from '../../../util/net-backend.ts';
import type { NicDesc } from '../../../net/nic.ts';
import { UserNet } from '../../../net/user/nat.ts';
import { nodeNatHost, openHostFwd } from './nat-host.ts';
import { openDgramLink, openStreamLink } from './link.ts';
import { wsConnect } from './websocket.ts';
import { WispClient } from '../../../net/wisp.ts';
import { wispNatHost } from '../../../net/user/wisp-host.ts';
import type { NatHost } from '../../../net/user/host.ts';
import type { UserOptions } from '../../../net/nic.ts';
import { systemResolver } from './nat-host.ts';

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
  const b = desc.backend;
  if (b.type === 'user') {
    const relay = b.wisp ? await wispHost(b, services) : null;
    const nat = new UserNet(b, desc.mac, relay?.host ?? nodeNatHost(b, services));
    const fwd = await openHostFwd(nat, b.hostfwd);
    const timer = setInterval(() => nat.tick(), 200);
    timer.unref();
    const close = nat.close.bind(nat);
    nat.close = () => {
      clearInterval(timer);
      fwd.close();
      close();
      relay?.close();
    };
    return { backend: nat, ports: fwd.ports };
  }
  if (b.type === 'stream') return { backend: await openStreamLink(b, services), ports: [] };
  return { backend: await openDgramLink(b, services), ports: [] };
}

/** The NAT's host side over a Wisp relay (what a browser tab has), for `wisp=ws://...`. */
async function wispHost(o: UserOptions, services: HostServices): Promise<{ host: NatHost; close(): void }> {
  const ws = await wsConnect(o.wisp);
  const client = new WispClient({ send: (m) => ws.send(m), close: () => ws.close() });
  ws.onMessage = (m) => {
    try {
      client.receive(m);
    } catch (e) {
      services.warn(`virtus: warning: wisp ${o.wisp}: ${(e as Error).message}; relay closed`);
      ws.close(1002);
    }
  };
  ws.onClose = () => client.down();
  const [addr, port] = (o.resolver || `${systemResolver() ?? '127.0.0.1'}:53`).split(':');
  const host = wispNatHost(client, {
    resolver: { addr: addr!, port: Number(port ?? 53) }, now: () => performance.now(), later: (ms, f) => void setTimeout(f, ms).unref(),
    wake: services.wake, warn: services.warn,
  });
  return { host, close: () => ws.close() };
}
