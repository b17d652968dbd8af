/**
 * The sending end of the drain test's stream (test/guest/cluster/sink.c), as its own process
 * (the test's process blocks in curl and the CLI): `node --import tsx stream-client.ts SWITCH
 * MAC` plugs into `virtus switch` at the unix socket SWITCH as QEMU's stream netdev does and
 * sends data frames of 1 KiB to MAC, go-back-N (32 frames in flight, resent from the sink's
 * last ack after 50 ms without one). It prints "acked N" every 100 frames; a line `end` on
 * stdin sends the end frame, and once the sink acknowledged it the client prints
 * "sent FRAMES frames BYTES bytes fnv HEX" (the FNV-1a 64 hash of everything acknowledged, in
 * order) and exits.
 */
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { encodeStream, StreamDecoder } from '../../src/net/framing.ts';

const [path, macText] = process.argv.slice(2) as [string, string];
const to = Uint8Array.from(macText.split(':').map((h) => parseInt(h, 16)));
const me = Uint8Array.of(0x52, 0x54, 0x00, 0x00, 0x00, 0xfe);
const SIZE = 1024;
const WINDOW = 32;

/** The data of frame k (deterministic, so the hash can be made from what was acknowledged). */
function data(k: number): Uint8Array {
  const b = new Uint8Array(SIZE);
  let x = (k * 2654435761 + 1) >>> 0;
  for (let i = 0; i < SIZE; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

function frame(kind: 'D' | 'E', seq: number): Uint8Array {
  const body = kind === 'D' ? data(seq) : new Uint8Array(0);
  const f = new Uint8Array(Math.max(60, 21 + body.length));
  f.set(to, 0);
  f.set(me, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  f[14] = kind.charCodeAt(0);
  new DataView(f.buffer).setUint32(15, seq);
  new DataView(f.buffer).setUint16(19, body.length);
  f.set(body, 21);
  return f;
}

let hash = 0xcbf29ce484222325n;
let base = 0; // the sink's next expected frame
let sent = 0; // the next frame to send
let end: number | null = null; // the end frame's sequence number, once asked
const sock = connect(path);
const send = (seq: number): void => void sock.write(encodeStream(frame(end !== null && seq === end ? 'E' : 'D', seq)));
const pump = (): void => {
  const last = end ?? Infinity;
  while (sent < base + WINDOW && sent <= last) send(sent++);
};
let lastAck = Date.now();
setInterval(() => {
  if (Date.now() - lastAck < 50) return;
  sent = base;
  lastAck = Date.now();
  pump();
}, 25);

const decoder = new StreamDecoder();
sock.on('data', (b: Buffer) => {
  for (const f of decoder.push(b)) {
    if (f.length < 19 || f[12] !== 0x88 || f[13] !== 0xb5 || f[14] !== 'A'.charCodeAt(0)) continue;
    const next = new DataView(f.buffer, f.byteOffset).getUint32(15);
    if (next <= base) continue;
    for (let k = base; k < next; k++) {
      if (end !== null && k === end) continue;
      for (const byte of data(k)) hash = BigInt.asUintN(64, (hash ^ BigInt(byte)) * 0x100000001b3n);
      if ((k + 1) % 100 === 0) process.stdout.write(`acked ${k + 1}\n`);
    }
    base = next;
    if (sent < base) sent = base;
    lastAck = Date.now();
    if (end !== null && base > end) {
      process.stdout.write(`sent ${end} frames ${end * SIZE} bytes fnv ${hash.toString(16).padStart(16, '0')}\n`);
      process.exit(0);
    }
    pump();
  }
});
sock.on('connect', pump);
sock.on('error', (e) => {
  process.stderr.write(`stream-client: ${e.message}\n`);
  process.exit(1);
});
createInterface({ input: process.stdin }).on('line', (l) => {
  if (l !== 'end' || end !== null) return;
  end = Math.max(sent, base);
  pump();
});
