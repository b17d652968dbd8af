/**
 * Harts in threads in the browser (machine/hart-threads.ts): each hart but the first runs in a
 * module Web Worker of its own (hart-worker.ts, bundled beside the machine's worker), over the
 * machine's shared memory. Only a cross-origin isolated page has shared memory, and the machine's
 * worker then waits for its harts' requests with Atomics.waitAsync: without either, the harts
 * take turns on the machine's worker.
 */
import type { HartThreadInit } from '../../machine/hart-thread.ts';
import type { HartThreadHandle, HartThreadStarter } from '../../machine/hart-threads.ts';

/** Monotonic milliseconds, the same in every worker of the page: its time origin plus its clock. */
export function hostMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Why harts cannot run in threads here, or null when they can. */
export function noHartThreads(crossOriginIsolated: boolean): string | null {
  if (!crossOriginIsolated) return 'the page is not cross-origin isolated (no shared memory)';
  if (typeof (Atomics as { waitAsync?: unknown }).waitAsync !== 'function') return 'this browser has no Atomics.waitAsync';
  return null;
}

/** Web Workers for harts, loaded from `url` (the bundled hart-worker.js). */
export function browserHartThreads(url: URL): HartThreadStarter {
  return {
    startHart(init: HartThreadInit): HartThreadHandle {
      const w = new Worker(url, { type: 'module', name: `virtus hart ${init.id}` });
      // A hart that fails is marked dead in the control block (the machine stops); the message
      // reaches the console of the page's developer tools.
      w.onerror = (e) => console.error(`virtus: hart ${init.id}: ${e.message}`);
      w.postMessage(init);
      return { terminate: () => w.terminate() };
    },
    hostMs,
  };
}
