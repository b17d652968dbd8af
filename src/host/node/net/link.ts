/**
 * QEMU 7.2's `-netdev stream` and `-netdev dgram` in Node: frames over a TCP or unix stream
 * socket (4-byte big-endian length prefix, src/net/framing.ts), as client or server, or one
 * frame per UDP datagram. A peer that breaks the framing or hangs up closes the link with a
 * one-line warning and the machine runs on (frames are lost until a peer connects again: a
 * server waits for the next one; a client does not reconnect, as QEMU 7.2 does not).
 */
import { createSocket } from 'node:dgram';
import { createServer, connect, type Socket } from 'node:net';
import { encodeStream, StreamDecoder } from '../../../net/framing.ts';
import { FrameLink } from '../../../net/link.ts';
import type { SocketAddr } from '../../../net/nic.ts';
import { VirtusError } from '../../../util/errors.ts';
import type { HostServices } from './index.ts';

/** Bytes queued on a socket beyond which frames are dropped (the peer is not reading). */
const WRITE_LIMIT = 8 << 20;

export const addrText = (a: SocketAddr) => (a.type === 'unix' ? `unix:${a.path}` : `tcp:${a.host}:${a.port}`);

function netError(what: string, e: unknown): VirtusError {
  const err = e as NodeJS.ErrnoException;
  return new VirtusError('NET_LINK', `${what}: ${err.code ?? err.message}`, { exitCode: 2 });
}

/** Plugs a connected stream socket into the link: frames both ways until it breaks. */
export function plugStream(link: FrameLink, s: Socket, label: string, services: HostServices, onGone?: () => void): void {
  const dec = new StreamDecoder();
  s.setNoDelay(true);
  let open = true;
  const gone = (why: string) => {
    if (!open) return;
    open = false;
    link.down();
    services.warn(`virtus: warning: ${label}: ${why}; link closed`);
    s.destroy();
    onGone?.();
  };
  link.connect((f) => {
    if (s.writableLength < WRITE_LIMIT) s.write(encodeStream(f));
  });
  s.on('data', (b: Buffer) => {
    let frames: Uint8Array[];
    try {
      frames = dec.push(new Uint8Array(b.buffer, b.byteOffset, b.length));
    } catch (e) {
      gone((e as Error).message);
      return;
    }
    for (const f of frames) link.input(f);
  });
  s.on('error', (e) => gone(e.message));
  s.on('close', () => gone('the peer hung up'));
}

/** `-netdev stream`: client (server=off) or server (server=on) on TCP or a unix socket. */
export async function openStreamLink(o: { server: boolean; addr: SocketAddr }, services: HostServices): Promise<FrameLink> {
  const label = `stream ${o.server ? 'server' : 'client'} ${addrText(o.addr)}`;
  const where = o.addr.type === 'unix' ? { path: o.addr.path } : { host: o.addr.host, port: o.addr.port };
  if (!o.server) {
    const s = connect(where);
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', (e) => reject(netError(`--nic ${label}: cannot connect`, e)));
    });
    const link = new FrameLink(label, { wake: services.wake, close: () => s.destroy() });
    plugStream(link, s, label, services);
    return link;
  }
  let peer: Socket | null = null;
  const srv = createServer((s) => {
    peer?.destroy();
    peer = s;
    plugStream(link, s, label, services, () => {
      if (peer === s) peer = null;
    });
  });
  const link = new FrameLink(label, { wake: services.wake, close: () => { peer?.destroy(); srv.close(); } });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', (e) => reject(netError(`--nic ${label}: cannot listen`, e)));
    srv.listen(where, () => resolve());
  });
  srv.on('error', () => {});
  return link;
}

/** `-netdev dgram` over UDP: one frame per datagram to `remote`, from `local` (or an ephemeral port). */
export async function openDgramLink(o: { local: SocketAddr | null; remote: SocketAddr | null }, services: HostServices): Promise<FrameLink> {
  if (o.local?.type === 'unix' || o.remote?.type === 'unix') {
    throw new VirtusError('NET_LINK', '--nic dgram: unix datagram sockets are not available in Node; use local.type=inet/remote.type=inet', { exitCode: 2 });
  }
  const local = o.local as { host: string; port: number } | null;
  const remote = o.remote as { host: string; port: number } | null;
  const label = `dgram ${local ? `${local.host}:${local.port}` : ''}->${remote ? `${remote.host}:${remote.port}` : ''}`;
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', (e) => reject(netError(`--nic ${label}: cannot bind`, e)));
    s.bind(local?.port ?? 0, local?.host, () => resolve());
  });
  s.on('error', () => {}); // ICMP unreachable from an absent peer: the frame is lost, as on a wire
  const link = new FrameLink(label, { wake: services.wake, close: () => s.close() });
  s.on('message', (b) => {
    if (b.length > 0) link.input(new Uint8Array(b.buffer, b.byteOffset, b.length));
  });
  if (remote) link.connect((f) => s.send(f, remote.port, remote.host));
  return link;
}
