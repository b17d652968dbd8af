/**
 * Ethernet frames between a browser tab and a stream peer (`virtus switch`, or any `-netdev
 * stream` server): the tab's NIC sends and receives one frame per WebSocket message, and the
 * server carries them over a stream socket it opens, with QEMU's framing (a 4-byte big-endian
 * length before each frame). The server alone chooses where that socket goes (its own
 * command line): nothing the page sends names a host address.
 */
import { connect, type Socket } from 'node:net';
import { encodeStream, STREAM_MAX_FRAME, StreamDecoder } from '../../../net/framing.ts';
import type { SocketAddr } from '../../../net/nic.ts';
import type { WebSocketConn } from './websocket.ts';

/** Bytes queued towards either side beyond which further frames are dropped (as a full NIC queue). */
const QUEUE_LIMIT = 1 << 20;

/** Bridges `ws` (one frame per message) to a new stream connection to `addr`. */
export function relayFrames(ws: WebSocketConn, addr: SocketAddr, log: (line: string) => void): void {
  const label = addr.type === 'unix' ? `unix:${addr.path}` : `tcp:${addr.host}:${addr.port}`;
  const s: Socket = connect(addr.type === 'unix' ? { path: addr.path } : { host: addr.host, port: addr.port });
  s.setNoDelay(true);
  const dec = new StreamDecoder();
  let open = true;
  const end = (why: string | null): void => {
    if (!open) return;
    open = false;
    if (why) log(`virtus: web: network link to ${label}: ${why}; closed`);
    s.destroy();
    ws.close(why ? 1011 : 1000);
  };
  const early: Uint8Array[] = [];
  let connected = false;
  s.once('connect', () => {
    connected = true;
    for (const f of early.splice(0)) s.write(encodeStream(f));
  });
  ws.onMessage = (m) => {
    if (m.length < 14 || m.length > STREAM_MAX_FRAME) return end(`a ${m.length}-byte frame from the tab`);
    if (!connected) {
      if (early.length < 64) early.push(m.slice());
      return;
    }
    if (s.writableLength < QUEUE_LIMIT) s.write(encodeStream(m));
  };
  ws.onClose = () => end(null);
  s.on('data', (b: Buffer) => {
    let frames: Uint8Array[];
    try {
      frames = dec.push(new Uint8Array(b.buffer, b.byteOffset, b.length));
    } catch (e) {
      return end((e as Error).message);
    }
    for (const f of frames) if (ws.buffered < QUEUE_LIMIT) ws.send(f);
  });
  s.on('error', (e) => end(e.message));
  s.on('close', () => end('the peer hung up'));
}
