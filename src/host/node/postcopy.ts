/**
 * Post-copy on Node (machine/migrate-postcopy.ts): the target's page receiver — a worker
 * thread (postcopy-worker.ts) that listens for the source's page channel and writes pages
 * into the machine's shared memory while the machine's thread blocks on the pages it needs —
 * and the source's end of that channel.
 *
 * The channel is a second connection, opened by the source where the target's answer says
 * (`tcp::PORT` on the address the migration link reached, or `unix:PATH`), proved by the
 * token of the Postcopy record. Source to target: the token, then RAM and zero-page records
 * and an end record; target to source: the pages it asks for (u32 each), then PAGES_CONFIRMED.
 */
import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { RAM_HOST } from '../../cpu/layout.ts';
import { PAGES_CONFIRMED, POSTCOPY_ANSWER, type PageChannel, type PageReceiver, type PageSource } from '../../machine/migrate-postcopy.ts';
import { VirtusError } from '../../util/errors.ts';
import { BROKEN, CTL_WORDS, MSG_BYTES, MSG_LEN, SEQ, STATE, type FromPageWorker, type PageWorkerInit, type ToPageWorker } from './postcopy-worker.ts';

/** The code the worker evaluates: this program's postcopyWorkerMain (the CLI's bundle, or the sources through tsx). */
function workerSource(): string {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return `import(${JSON.stringify(self)}).then((m) => m.postcopyWorkerMain())`;
  const tsx = pathToFileURL(createRequire(self).resolve('tsx/esm/api')).href;
  const worker = new URL('./postcopy-worker.ts', self).href;
  return `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(worker)}); }).then((m) => m.postcopyWorkerMain())`;
}

/**
 * A receiver thread started ahead of need: it loads this program (a few hundred ms) while the
 * target waits for a source, so a switch to post-copy soon after the start does not wait for it.
 */
export function receiverThread(): Worker {
  const w = new Worker(workerSource(), { eval: true });
  w.unref();
  // A thread that fails to load is reported by the receiver that uses it.
  w.on('error', () => {});
  return w;
}

/** Where the target's receiver listens: beside the migration link. */
export type ReceiverAddress = { host: string } | { path: string };

/**
 * A target's page receiver for `memory` on `worker` (one started ahead, or a new one: it then
 * loads while pre-copy runs), listening at `listen`.
 */
export function pageReceiver(memory: WebAssembly.Memory, ramSize: number, listen: ReceiverAddress, t: { connectMs: number; idleMs: number }, ahead?: Worker): PageReceiver {
  // A thread started ahead that has ended already (it failed to load) is replaced.
  const worker = ahead && ahead.threadId >= 0 ? ahead : receiverThread();
  if (!(memory.buffer instanceof SharedArrayBuffer)) {
    void worker.terminate();
    return { open: () => Promise.reject(new VirtusError('NO_POSTCOPY', 'post-copy needs shared memory, which this machine does not have')), close() {} };
  }
  const missing = new SharedArrayBuffer(Math.ceil(ramSize / 4096 / 8));
  const ctl = new SharedArrayBuffer(CTL_WORDS * 4);
  const msg = new SharedArrayBuffer(MSG_BYTES);
  const init: PageWorkerInit = { memory: memory.buffer, ramHost: RAM_HOST, ramSize, missing, ctl, msg, listen, ...t };
  worker.postMessage({ t: 'init', init } satisfies ToPageWorker);
  let listening!: { resolve: (where: string) => void; reject: (e: Error) => void };
  const where = new Promise<string>((resolve, reject) => (listening = { resolve, reject }));
  where.catch(() => {});
  let ended!: { resolve: () => void; reject: (e: Error) => void };
  const done = new Promise<void>((resolve, reject) => (ended = { resolve, reject }));
  done.catch(() => {});
  let closed = false;
  const lost = (why: string): VirtusError => new VirtusError('MIGRATE_LOST', `post-copy migration failed: ${why}; the machine cannot run on without the rest of its memory`);
  worker.on('message', (m: FromPageWorker) => {
    if (m.t === 'listening') listening.resolve(m.where);
    else if (m.t === 'failed') listening.reject(new VirtusError('NO_POSTCOPY', m.message));
    else if (m.t === 'done') ended.resolve();
    else ended.reject(lost(m.message));
  });
  worker.on('error', (e) => {
    listening.reject(new VirtusError('NO_POSTCOPY', `post-copy: the page receiver failed: ${e.message}`));
    ended.reject(lost(`the page receiver failed: ${e.message}`));
  });
  worker.on('exit', () => {
    if (!closed) ended.reject(lost('the page receiver ended'));
  });
  const close = (): void => {
    closed = true;
    void worker.terminate();
  };
  return {
    async open(pending, token) {
      const at = await where;
      new Uint8Array(missing).set(pending);
      worker.postMessage({ t: 'open', token } satisfies ToPageWorker);
      return { answer: POSTCOPY_ANSWER + at, pages: pageSource(worker, missing, ctl, msg, done, close, lost) };
    },
    close,
  };
}

/** The machine thread's view of the receiver. */
function pageSource(worker: Worker, missingBuf: SharedArrayBuffer, ctlBuf: SharedArrayBuffer, msgBuf: SharedArrayBuffer, done: Promise<void>, close: () => void, lost: (why: string) => VirtusError): PageSource {
  const missing = new Uint8Array(missingBuf);
  const ctl = new Int32Array(ctlBuf);
  let asked = 0;
  const check = (): void => {
    if (Atomics.load(ctl, STATE) !== BROKEN) return;
    const len = Atomics.load(ctl, MSG_LEN);
    throw lost(new TextDecoder().decode(new Uint8Array(msgBuf).slice(0, len)));
  };
  return {
    missing,
    done,
    wait(page) {
      const i = page >>> 3;
      const bit = 1 << (page & 7);
      if (!(Atomics.load(missing, i) & bit)) return;
      check();
      worker.postMessage({ t: 'need', page } satisfies ToPageWorker);
      asked++;
      for (;;) {
        const seq = Atomics.load(ctl, SEQ);
        if (!(Atomics.load(missing, i) & bit)) return;
        check();
        Atomics.wait(ctl, SEQ, seq, 1000);
      }
    },
    requests: () => asked,
    remaining() {
      let n = 0;
      for (const b of missing) for (let v = b; v; v &= v - 1) n++;
      return n;
    },
    close,
  };
}

/**
 * The source's end of the page channel: connects to `where` (from the target's answer; a TCP
 * address without a host is on `host`) and proves itself with `token`.
 */
export function connectPages(where: string, host: string, token: string): Promise<PageChannel> {
  const m = /^tcp::(\d{1,5})$/.exec(where);
  const addr = m ? { host, port: Number(m[1]) } : where.startsWith('unix:') ? { path: where.slice(5) } : null;
  if (!addr) return Promise.reject(new VirtusError('MIGRATE_REFUSED', `the target's post-copy answer names no page channel: "${where}"`));
  return new Promise((resolve, reject) => {
    const sock: Socket = connect(addr);
    let failure: Error | null = null;
    let got = Buffer.alloc(0);
    const asked: number[] = [];
    let confirmed = false;
    let drain: { resolve: () => void; reject: (e: Error) => void } | null = null;
    let wake: (() => void) | null = null;
    let confirmWaiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
    const broken = (e: Error): void => {
      failure ??= e;
      drain?.reject(failure);
      confirmWaiter?.reject(failure);
      drain = confirmWaiter = null;
      wake?.();
    };
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      let at = 0;
      for (; at + 4 <= got.length; at += 4) {
        const v = got.readUInt32LE(at);
        if (v === PAGES_CONFIRMED) {
          confirmed = true;
          confirmWaiter?.resolve();
        } else asked.push(v);
      }
      got = got.subarray(at);
      if (asked.length) wake?.();
    });
    sock.on('drain', () => {
      drain?.resolve();
      drain = null;
    });
    sock.on('error', (e) => broken(new VirtusError('MIGRATE_LINK', `the page channel broke: ${e.message}`)));
    sock.on('close', () => broken(new VirtusError('MIGRATE_LINK', 'the target closed the page channel')));
    sock.once('error', (e) => reject(new VirtusError('MIGRATE_CONNECT', `cannot open the page channel at ${where}: ${e.message}`)));
    sock.once('connect', () => {
      sock.setNoDelay(true);
      sock.write(token, 'latin1');
      resolve({
        send(bytes) {
          if (failure) return Promise.reject(failure);
          if (sock.write(bytes)) return Promise.resolve();
          return new Promise((res, rej) => (drain = { resolve: res, reject: rej }));
        },
        asked: () => asked.splice(0),
        request: () => (asked.length || failure ? Promise.resolve() : new Promise<void>((r) => (wake = () => ((wake = null), r())))),
        confirmed() {
          if (confirmed) return Promise.resolve();
          if (failure) return Promise.reject(failure);
          return new Promise((res, rej) => (confirmWaiter = { resolve: res, reject: rej }));
        },
        close: () => sock.destroy(),
      });
    });
  });
}
