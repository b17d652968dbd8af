/**
 * A hart's Web Worker (hart-threads.ts): given its init (the machine's shared memory, its id),
 * it runs the hart until the machine's worker tells it to quit. It waits with Atomics.wait,
 * which a worker may do.
 */
import { runHartThread, type HartThreadInit } from '../../machine/hart-thread.ts';
import { hostMs } from './hart-threads.ts';

(globalThis as unknown as { onmessage: ((e: MessageEvent<HartThreadInit>) => void) | null }).onmessage = (e) => {
  runHartThread(e.data, { hostMs });
};
