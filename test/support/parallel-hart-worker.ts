/**
 * The worker side of parallel-harts.ts: attaches to one hart of a machine's shared memory
 * (createHartEngine) and runs it until it waits in WFI (a finished test program parks there)
 * or the main thread says stop. Posts the instructions it ran.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { S } from '../../src/cpu/hart.ts';
import { createHartEngine } from '../../src/jit/hart-engine.ts';

export interface HartWorkerData {
  memory: WebAssembly.Memory;
  id: number;
  ramSize: number;
  engine: 'jit' | 'interp';
  /** Word 0 becomes nonzero when the main thread is done. */
  stop: Int32Array;
}

export function hartWorkerMain(): void {
  const d = workerData as HartWorkerData;
  const { hart, engine } = createHartEngine({ memory: d.memory, id: d.id, ramSize: d.ramSize, engine: d.engine, attach: true });
  let insns = 0;
  while (Atomics.load(d.stop, 0) === 0) {
    insns += engine.run(100_000);
    if (hart.s[S.wfi] !== 0) break;
  }
  parentPort!.postMessage({ insns, pc: hart.pcBig.toString(16) });
}

if (!isMainThread) hartWorkerMain();
