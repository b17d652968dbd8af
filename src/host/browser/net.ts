/**
 * The network of a machine in a browser tab: the `user` NAT runs in the tab's worker and
 * reaches the outside through the server the page came from, over a Wisp relay on a
 * WebSocket (`attachWisp` in host/node/net/wisp-server.ts serves it; v86-style clients
 * speak the same protocol); a stream NIC's frames go over a WebSocket to the server, which
 * carries them to the peer its command line names. The worker's VmHost opens both here.
 */
import type { NicDesc } from '../../net/nic.ts';
import { FrameLink } from '../../net/link.ts';
import { UserNet } from '../../net/user/nat.ts';
import { wispNatHost } from '../../net/user/wisp-host.ts';
import { WispClient } from '../../net/wisp.ts';
import { VirtusError } from '../../util/errors.ts';

/** Where `virtus web` serves the relay (its WISP_PATH), on the server the page came from. */
export const WISP_RELAY = '/wisp/';
/** Where `virtus web` carries NIC N's frames (its LINK_PATH): LINK_RELAY + N + '/'. */
export const LINK_RELAY = '/link/';

/** An absolute ws: or wss: URL for `path` on the server the page came from. */
function serverUrl(path: string): string {
  return path.startsWith('/') ? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}` : path;
}

/** Opens a WebSocket, or fails with one line naming what it is for. */
async function openSocket(url: string, what: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new VirtusError('NET_RELAY', `cannot open ${what} ${url}`));
  });
  return ws;
}

/**
 * NIC `index`'s frames over the server (a stream link its command line names: a switch, a
 * QEMU -netdev stream server): one WebSocket message per frame.
 */
export async function createBrowserLink(index: number, s: Pick<BrowserNetServices, 'wake' | 'warn'>): Promise<FrameLink> {
  const ws = await openSocket(serverUrl(`${LINK_RELAY}${index}/`), 'the network link');
  const link = new FrameLink(`link ${index} through the server`, {
    wake: s.wake,
    close: () => {
      ws.onclose = null; // closed by the machine: nothing to warn about
      ws.close();
    },
  });
  link.connect((f) => {
    // As a full queue on a real NIC: frames beyond what the socket holds are dropped.
    if (ws.bufferedAmount < 1 << 20) ws.send(f);
  });
  ws.onmessage = (e) => link.input(new Uint8Array(e.data as ArrayBuffer));
  ws.onclose = () => {
    link.down();
    s.warn('virtus: warning: the network link through the server closed');
  };
  return link;
}

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

/** Opens the relay and returns the NAT behind the NIC `desc` (a `user` NIC). */
export async function createBrowserNic(desc: NicDesc, s: BrowserNetServices): Promise<UserNet> {
  const b = desc.backend;
  if (b.type !== 'user') throw new VirtusError('BAD_NIC', `the NAT of a browser tab is a user NIC, not ${b.type}`);
  const ws = await openSocket(serverUrl(s.relay), 'the network relay');
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
