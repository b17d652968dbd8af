/**
 * One hart and the engine that runs it, built over a machine's memory from plain data: what a
 * thread other than the machine's needs to run a hart of it in parallel (the memory can be
 * posted to a worker; everything else here is made again on the worker's side). The hart
 * shares RAM, the dirty log and the page flags (layout.ts PAGE_FLAGS) with the machine's other
 * harts through the memory; it reaches devices only through the bus it is given.
 */
import { createInterpreter, type Engine } from '../cpu/interp.ts';
import { Hart, type HartHooks, type PhysBus } from '../cpu/hart.ts';
import { pageFlagsView } from '../cpu/layout.ts';
import { JitEngine } from './engine.ts';

export interface HartEngineOptions {
  memory: WebAssembly.Memory;
  id: number;
  ramSize: number;
  engine: 'jit' | 'interp';
  /** Devices (default: none; every access outside RAM is an access fault). */
  bus?: PhysBus;
  hooks?: HartHooks;
  /** Keep the hart block's state as it is (see HartOptions.attach); default: reset the hart. */
  attach?: boolean;
  /** Translator settings, as MachineOptions.jit. */
  jit?: { threshold?: number; tailCalls?: boolean };
}

/** A bus without devices. */
const NO_DEVICES: PhysBus = { read: () => NaN, write: () => false };

/**
 * A hart over `o.memory` and its engine. With the translator, the engine's peers are itself
 * alone: stores into code that another thread's engine translated reach that engine only
 * through whatever the caller arranges (the PAGE_CODE flag itself is shared).
 */
export function createHartEngine(o: HartEngineOptions): { hart: Hart; engine: Engine } {
  const hart = new Hart({
    id: o.id,
    memory: o.memory,
    ramSize: o.ramSize,
    bus: o.bus ?? NO_DEVICES,
    hooks: o.hooks ?? { time: () => 0 },
    pageFlags: pageFlagsView(o.memory, o.ramSize),
    attach: o.attach,
  });
  const engine = o.engine === 'jit'
    ? new JitEngine({ hart, memory: o.memory, harts: [hart], ...o.jit })
    : createInterpreter(hart);
  return { hart, engine };
}
