/**
 * The thread that receives a post-copy target's pages (machine/migrate-postcopy.ts). It runs
 * beside the machine's thread, which blocks (Atomics.wait) on a page it needs: this thread
 * listens for the source's page channel, checks the token, writes each arriving page into the
 * machine's shared memory and only then clears its bit in the shared bitmap, and sends the
 * machine's requests back to the source. The control words say how it stands:
 *
 *   ctl[SEQ]   bumped (and notified) after every change, so a waiting thread wakes
 *   ctl[STATE] LISTENING, RUNNING, DONE or BROKEN (the reason in the message bytes)
 *
 * A page is written at most once: a page whose bit is clear (already here; the guest may
 * have written it since) is never overwritten. Every field of the stream is checked before use.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { PAGES_CONFIRMED } from '../../machine/migrate-postcopy.ts';
import { PAGE_SIZE } from '../../cpu/layout.ts';
import { bad, RecordParser, Rec, unpack, useCodec } from '../../machine/snapshot-format.ts';
import { nodeCodec } from './snapshot-codec.ts';

/** Indices of the control words. */
export const SEQ = 0;
export const STATE = 1;
export const MSG_LEN = 2;
export const CTL_WORDS = 4;
export const LISTENING = 0;
export const RUNNING = 1;
export const DONE = 2;
export const BROKEN = 3;
/** Bytes of the reason a broken channel gives. */
export const MSG_BYTES = 1024;

/** What the machine's thread gives this one. */
export interface PageWorkerInit {
  /** The machine's memory (shared). */
  memory: SharedArrayBuffer;
  ramHost: number;
  ramSize: number;
  /** The missing-page bitmap (one bit per page). */
  missing: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  msg: SharedArrayBuffer;
  /** Where to listen: a TCP host (any port) or a unix socket path. */
  listen: { host: string } | { path: string };
  /** Seconds allowed for the source to connect once open, and to stay silent while pages are missing. */
  connectMs: number;
  idleMs: number;
}

/** Messages from the machine's thread. */
export type ToPageWorker = { t: 'open'; token: string } | { t: 'need'; page: number };
/** Messages to it. */
export type FromPageWorker = { t: 'listening'; where: string } | { t: 'done' } | { t: 'broken'; message: string } | { t: 'failed'; message: string };

/** The worker's main: serves one post-copy page channel. */
export function postcopyWorkerMain(): void {
  const init = workerData as PageWorkerInit;
  const port = parentPort!;
  const post = (m: FromPageWorker): void => port.postMessage(m);
  useCodec(nodeCodec);
  const mem = new Uint8Array(init.memory);
  const missing = new Uint8Array(init.missing);
  const ctl = new Int32Array(init.ctl);
  const msg = new Uint8Array(init.msg);
  const pages = init.ramSize / PAGE_SIZE;
  let token: string | null = null;
  let sock: Socket | null = null;
  let timer: NodeJS.Timeout | null = null;
  const queued: number[] = [];
  const bump = (): void => {
    Atomics.add(ctl, SEQ, 1);
    Atomics.notify(ctl, SEQ);
  };
  const server: Server = createServer();
  const finish = (state: number, message?: string): void => {
    if (Atomics.load(ctl, STATE) === DONE || Atomics.load(ctl, STATE) === BROKEN) return;
    if (timer) clearTimeout(timer);
    if (message !== undefined) {
      const b = new TextEncoder().encode(message).subarray(0, MSG_BYTES);
      msg.set(b);
      Atomics.store(ctl, MSG_LEN, b.length);
    }
    Atomics.store(ctl, STATE, state);
    bump();
    server.close();
    post(state === DONE ? { t: 'done' } : { t: 'broken', message: message! });
  };
  const arm = (ms: number, why: string): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      finish(BROKEN, why);
      sock?.destroy();
    }, ms);
  };
  const ask = (page: number): void => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(page >>> 0);
    sock!.write(b);
  };
  const isMissing = (p: number): boolean => (Atomics.load(missing, p >>> 3) & (1 << (p & 7))) !== 0;
  const arrived = (p: number): void => void Atomics.and(missing, p >>> 3, ~(1 << (p & 7)) & 0xff);
  const what = 'post-copy page channel';
  const parser = new RecordParser(what);
  /** Applies the records received so far; true once the end record came. */
  const apply = (): boolean => {
    for (let f = parser.next(); f; f = parser.next()) {
      const at = `${what}: record ${parser.count}`;
      if (f.type === Rec.End) {
        if (parser.pending) bad(`${what} is corrupt: bytes follow its end record`);
        let left = 0;
        for (let p = 0; p < pages; p++) if (isMissing(p)) left++;
        if (left) bad(`the source ended the ${what} with ${left} pages still missing`);
        return true;
      }
      let count: number;
      let data: Uint8Array | null = null;
      if (f.type === Rec.Zero) {
        const raw = unpack(f, at);
        if (raw.length !== 4) bad(`${at} is corrupt: a zero-page record holds 4 bytes`);
        count = new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0, true);
      } else if (f.type === Rec.Ram) {
        if (f.raw === 0 || f.raw % PAGE_SIZE) bad(`${at} is corrupt: RAM records hold whole pages`);
        count = f.raw / PAGE_SIZE;
        data = unpack(f, at);
      } else {
        bad(`${at} has no place in a ${what}`);
      }
      if (count === 0 || f.arg + count > pages) bad(`${at} is corrupt: pages ${f.arg}+${count} lie outside the machine's ${pages} pages of RAM`);
      for (let i = 0; i < count; i++) {
        const p = f.arg + i;
        if (!isMissing(p)) continue;
        const o = init.ramHost + p * PAGE_SIZE;
        if (data) mem.set(data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), o);
        else mem.fill(0, o, o + PAGE_SIZE);
        arrived(p);
      }
      bump();
    }
    return false;
  };
  const serve = (s: Socket): void => {
    sock = s;
    server.close();
    Atomics.store(ctl, STATE, RUNNING);
    bump();
    for (const p of queued.splice(0)) ask(p);
    arm(init.idleMs, `the source sent no pages for ${init.idleMs / 1000} s`);
    s.on('data', (d: Buffer) => {
      arm(init.idleMs, `the source sent no pages for ${init.idleMs / 1000} s`);
      try {
        parser.push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
        if (!apply()) return;
        const b = Buffer.alloc(4);
        b.writeUInt32LE(PAGES_CONFIRMED);
        s.end(b);
        finish(DONE);
      } catch (e) {
        finish(BROKEN, e instanceof Error ? e.message : String(e));
        s.destroy();
      }
    });
    s.on('error', (e) => finish(BROKEN, `the source's page channel broke: ${e.message}`));
    s.on('close', () => finish(BROKEN, 'the source closed its page channel before every page arrived'));
  };
  /** Connections whose token is in but not yet checked (the token to check against comes with `open`). */
  const checks = new Set<() => void>();
  server.on('connection', (s: Socket) => {
    if (sock) return void s.destroy();
    // The source proves itself with the token first; anyone else is dropped.
    let head = Buffer.alloc(0);
    const check = (): void => {
      if (head.length < 32 || token === null) return;
      checks.delete(check);
      s.off('data', onData);
      if (head.subarray(0, 32).toString('latin1') !== token || sock) return void s.destroy();
      serve(s);
      if (head.length > 32) s.emit('data', head.subarray(32));
    };
    const onData = (d: Buffer): void => {
      head = Buffer.concat([head, d]);
      check();
    };
    checks.add(check);
    s.on('data', onData);
    s.on('error', () => {});
    s.on('close', () => checks.delete(check));
  });
  port.on('message', (m: ToPageWorker) => {
    if (m.t === 'open') {
      token = m.token;
      arm(init.connectMs, `the source did not open its page channel within ${init.connectMs / 1000} s`);
      for (const c of [...checks]) c();
    } else if (sock) ask(m.page);
    else queued.push(m.page);
  });
  server.once('error', (e) => post({ t: 'failed', message: `post-copy: cannot listen for the page channel: ${e.message}` }));
  const onListening = (): void => {
    const a = server.address();
    post({ t: 'listening', where: typeof a === 'string' ? `unix:${a}` : `tcp::${a!.port}` });
  };
  if ('path' in init.listen) server.listen(init.listen.path, onListening);
  else server.listen(0, init.listen.host, onListening);
}
