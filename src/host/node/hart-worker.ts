/**
 * Harts in threads on Node (machine/hart-threads.ts): each hart of a machine runs in a
 * worker_threads worker that loads this program (the CLI's bundle, or the sources through tsx)
 * and runs runHartThread over the machine's shared memory.
 */
import { Worker, workerData } from 'node:worker_threads';
import { collectGarbage } from './gc.ts';
import { runHartThread, type HartThreadInit } from '../../machine/hart-thread.ts';
import type { HartThreadHandle, HartThreadStarter } from '../../machine/hart-threads.ts';

/**
 * performance.now() counts from each thread's own start; CLOCK_MONOTONIC (hrtime) is one
 * clock for all of them. The offset is measured once per thread, so reads stay cheap.
 */
const OFFSET = Number(process.hrtime.bigint()) / 1e6 - performance.now();

/** Monotonic host milliseconds, the same in every thread of the process. */
export function hostMs(): number {
  return performance.now() + OFFSET;
}

/** The code the worker evaluates: this program's hartWorkerMain. */
function workerSource(): string {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return `import(${JSON.stringify(self)}).then((m) => m.hartWorkerMain())`;
  // The ESM entry of tsx's API (require.resolve names its CommonJS one, which does not load here).
  const tsx = import.meta.resolve('tsx/esm/api');
  const worker = new URL('./hart-worker.ts', self).href;
  return `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(worker)}); }).then((m) => m.hartWorkerMain())`;
}

/** A hart's thread's main: runs the hart its init names until the machine's thread says quit. */
export function hartWorkerMain(): void {
  // A sweep's dropped modules are freed by a collection of this thread's own heap (the
  // machine's thread returns the pages to the system: RunnerHost.collect).
  runHartThread(workerData as HartThreadInit, { hostMs, collect: collectGarbage });
}

/** Node's threads for harts. */
export const nodeHartThreads: HartThreadStarter = {
  startHart(init: HartThreadInit): HartThreadHandle {
    const w = new Worker(workerSource(), { eval: true, workerData: init });
    // A thread must not keep a finished program alive; a failure reaches the machine's thread
    // through the control block (the hart is marked dead), the message here.
    w.unref();
    w.on('error', (e) => process.stderr.write(`virtus: hart ${init.id}: ${e.stack ?? e.message}\n`));
    return { terminate: () => void w.terminate() };
  },
  hostMs,
};
