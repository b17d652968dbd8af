/**
 * The user NAT's host side over a Wisp relay (src/net/wisp.ts): what a machine in a browser
 * tab uses, where there are no sockets. Each guest TCP connection is a Wisp TCP stream, each
 * UDP destination a Wisp UDP stream; DNS queries go as UDP to `resolver` through the relay.
 * Wisp cannot half-close: the guest's FIN closes the stream once what the guest sent is out,
 * and the server's CLOSE is the host's FIN (bytes already received are delivered first).
 */
import { CLOSE_VOLUNTARY, STREAM_TCP, STREAM_UDP, WispClient, type WispStream } from '../wisp.ts';
import type { HostTcp, HostUdp, NatHost } from './host.ts';

/** Bytes counted as buffered per DATA packet waiting for a grant (for the guest's window). */
const PACKET_BYTES = 16 * 1024;

/** A NatHost whose sockets are streams of `client`. */
export function wispNatHost(
  client: WispClient,
  o: { resolver: { addr: string; port: number } | null; now(): number; later(ms: number, f: () => void): void; wake(): void; warn(m: string): void },
): NatHost {
  return {
    connectTcp(addr, port, ev): HostTcp {
      let ending = false;
      let paused = false;
      const held: Uint8Array[] = [];
      let s: WispStream | null = null;
      s = client.open(STREAM_TCP, addr, port, {
        data: (b) => {
          if (paused) held.push(b.slice());
          else ev.data(b);
        },
        closed: (reason) => {
          for (const b of held.splice(0)) ev.data(b);
          if (reason === CLOSE_VOLUNTARY) ev.ended();
          ev.closed(reason === CLOSE_VOLUNTARY ? null : `Wisp close reason 0x${reason.toString(16)}`);
        },
      });
      // Wisp sends no "connected": the stream is usable at once (a refusal arrives as CLOSE).
      queueMicrotask(() => ev.connected());
      const stream = s;
      return {
        write: (b) => stream.send(b),
        buffered: () => stream.queued() * PACKET_BYTES,
        end: () => {
          if (ending) return;
          ending = true;
          stream.close(CLOSE_VOLUNTARY);
        },
        destroy: () => stream.close(CLOSE_VOLUNTARY),
        pause: () => void (paused = true),
        resume: () => {
          paused = false;
          for (const b of held.splice(0)) ev.data(b);
        },
      };
    },
    openUdp(message): HostUdp {
      const streams = new Map<string, WispStream>();
      return {
        send(b, addr, port) {
          const key = `${addr}:${port}`;
          let s = streams.get(key);
          if (!s) {
            s = client.open(STREAM_UDP, addr, port, { data: (d) => message(d, addr, port), closed: () => streams.delete(key) });
            streams.set(key, s);
          }
          s.send(b);
        },
        close() {
          for (const s of streams.values()) s.close();
          streams.clear();
        },
      };
    },
    resolver: () => o.resolver,
    now: o.now,
    later: o.later,
    wake: o.wake,
    warn: o.warn,
  };
}
