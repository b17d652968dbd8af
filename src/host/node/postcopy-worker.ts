/**
 * The thread that receives a post-copy target's pages (machine/migrate-postcopy.ts). It runs
 * beside the machine's thread, which blocks (Atomics.wait) on a page it needs: this thread
 * listens for the source's page channel, checks the token, writes each arriving page into the
 * machine's shared memory and only then clears its bit in the shared bitmap (PageStream), and
 * sends the machine's requests back to the source. The control words say how it stands:
 *
 *   ctl[SEQ]   bumped (and notified) after every change, so a waiting thread wakes
 *   ctl[STATE] LISTENING, RUNNING, DONE or BROKEN (the reason in the message bytes)
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { parentPort, type MessagePort } from 'node:worker_threads';
import { PAGES_CONFIRMED } from '../../machine/migrate-postcopy.ts';
import { PageStream } from '../../machine/postcopy-stream.ts';
import { useCodec } from '../../machine/snapshot-format.ts';
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
/** Bytes a connection may send before its token can be checked. */
const HEAD_MAX = 16 << 20;
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

/** Messages from the machine's thread: `init` first (the thread may be started before the machine exists), then `open`, then requests. */
export type ToPageWorker = { t: 'init'; init: PageWorkerInit } | { t: 'open'; token: string } | { t: 'need'; page: number };
/** Messages to it. */
export type FromPageWorker = { t: 'listening'; where: string } | { t: 'done' } | { t: 'broken'; message: string } | { t: 'failed'; message: string };

/** The worker's main: waits for its `init`, then serves one post-copy page channel. */
export function postcopyWorkerMain(): void {
  const port = parentPort!;
  const first = (m: ToPageWorker): void => {
    if (m.t !== 'init') return;
    port.off('message', first);
    serveChannel(m.init, port);
  };
  port.on('message', first);
}

function serveChannel(init: PageWorkerInit, port: MessagePort): void {
  const post = (m: FromPageWorker): void => port.postMessage(m);
  useCodec(nodeCodec);
  const missing = new Uint8Array(init.missing);
  const ctl = new Int32Array(init.ctl);
  const msg = new Uint8Array(init.msg);
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
  const stream = new PageStream(new Uint8Array(init.memory, init.ramHost, init.ramSize), missing, bump);
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
        if (!stream.push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength))) return;
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
      // Only a source that came before its token was known sends more than the token here.
      if (head.length > HEAD_MAX) return void s.destroy();
      check();
    };
    checks.add(check);
    s.on('data', onData);
    s.on('error', () => {});
    s.on('close', () => checks.delete(check));
  });
  port.on('message', (m: ToPageWorker) => {
    if (m.t === 'init') return;
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
  if ('path' in init.listen) {
    // A socket left by an earlier receiver is replaced; anything else at the path is not touched.
    const path = init.listen.path;
    if (existsSync(path) && statSync(path).isSocket()) rmSync(path, { force: true });
    server.listen(path, onListening);
  }
  else server.listen(0, init.listen.host, onListening);
}
