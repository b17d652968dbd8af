/**
 * The network of a machine in a browser tab: the `user` NAT runs in the tab's worker and
 * reaches the outside through the server the page came from, over a Wisp relay on a
 * WebSocket (`attachWisp` in host/node/net/wisp-server.ts serves it; v86-style clients
 * speak the same protocol). `virtus web --nic user` puts the NIC in the machine description;
 * the worker's VmHost opens it here.
 */
import type { NicDesc } from '../../net/nic.ts';
import { UserNet } from '../../net/user/nat.ts';
import { wispNatHost } from '../../net/user/wisp-host.ts';
import { WispClient } from '../../net/wisp.ts';
import { VirtusError } from '../../util/errors.ts';

/** Where `virtus web` serves the relay (its WISP_PATH), on the server the page came from. */
export const WISP_RELAY = '/wisp/';

/** What the tab gives the NIC. */
export interface BrowserNetServices {
  /** The relay, e.g. `ws://host:port/wisp/` (relative to the page when it starts with '/'). */
  relay: string;
  /** Where DNS queries go through the relay (the server's resolver). */
  resolver: { addr: string; port: number };
  /** Wakes the machine's runner. */
  wake(): void;
  warn(line: string): void;
}

/** Opens the relay and returns the NAT behind the NIC `desc` (only `user` exists in a tab). */
export async function createBrowserNic(desc: NicDesc, s: BrowserNetServices): Promise<UserNet> {
  const b = desc.backend;
  if (b.type !== 'user') throw new VirtusError('BAD_NIC', `a machine in a browser tab has only the user backend, not ${b.type}`);
  const url = s.relay.startsWith('/') ? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${s.relay}` : s.relay;
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new VirtusError('NET_WISP', `cannot open the network relay ${url}`));
  });
  const client = new WispClient({ send: (m) => ws.send(m), close: () => ws.close() });
  ws.onmessage = (e) => {
    try {
      client.receive(new Uint8Array(e.data as ArrayBuffer));
    } catch (err) {
      s.warn(`network relay: ${(err as Error).message}; closed`);
      ws.close();
    }
  };
  ws.onclose = () => client.down();
  const nat = new UserNet(b, desc.mac, wispNatHost(client, {
    resolver: s.resolver, now: () => performance.now(), later: (ms, f) => void setTimeout(f, ms), wake: s.wake, warn: s.warn,
  }));
  const timer = setInterval(() => nat.tick(), 200);
  const close = nat.close.bind(nat);
  nat.close = () => {
    clearInterval(timer);
    close();
    ws.close();
  };
  return nat;
}
