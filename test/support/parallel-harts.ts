/**
 * Runs a bare-metal SMP test program (test/guest/smp/, HTIF console) with its harts in
 * parallel host threads, before machines do so themselves: the machine is built in this thread
 * with every hart pointed at the entry (a0 = hart id, as --bios none does), hart 0 runs here
 * with HTIF, and harts 1..N-1 run in worker threads over the same shared WebAssembly.Memory,
 * each with its own Hart and engine (src/jit/hart-engine.ts).
 */
import { buildSync } from 'esbuild';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { S } from '../../src/cpu/hart.ts';
import { parseElf } from '../../src/machine/elf.ts';
import { Machine } from '../../src/machine/machine.ts';

export interface ParallelRun {
  /** What hart 0 printed. */
  stdout: string;
  /** The program's exit code, or null when it did not finish within the time allowed. */
  code: number | null;
  /** Instructions each hart ran, in hart order. */
  insns: number[];
  ms: number;
}

/**
 * The worker's program, bundled once into a temporary file (a worker thread does not get this
 * process's TypeScript loader).
 */
let bundle: string | null = null;
function workerFile(): string {
  if (bundle) return bundle;
  const dir = mkdtempSync(join(tmpdir(), 'virtus-harts-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'hart-worker.mjs');
  buildSync({
    entryPoints: [fileURLToPath(new URL('./parallel-hart-worker.ts', import.meta.url))],
    bundle: true, format: 'esm', platform: 'node', outfile: out, logLevel: 'error',
  });
  return (bundle = out);
}

/** Runs `elf` on `harts` harts in parallel threads with `engine`, giving up after `timeoutMs`. */
export async function runParallel(elf: string, harts: number, engine: 'jit' | 'interp', timeoutMs = 30_000): Promise<ParallelRun> {
  const ramSize = 16 << 20;
  let stdout = '';
  const m = new Machine({ ramSize, harts, engine, console: (b) => (stdout += Buffer.from(b).toString('latin1')) });
  const image = parseElf(readFileSync(elf), elf);
  for (const s of image.segments) {
    m.ram.load(s.paddr, s.data);
    m.ram.zero(s.paddr + s.data.length, s.memsz - s.data.length);
  }
  m.attachHtif(image.symbols.get('tohost')!, image.symbols.get('fromhost') ?? null);
  for (const h of m.harts) {
    h.setPcNum(image.entry);
    h.setX(10, BigInt(h.id));
  }
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const t0 = performance.now();
  const done = m.harts.slice(1).map((h) => {
    const w = new Worker(workerFile(), { workerData: { memory: m.memory, id: h.id, ramSize, engine, stop } });
    return new Promise<number>((resolve, reject) => {
      w.once('message', (r: { insns: number }) => resolve(r.insns));
      w.once('error', reject);
    }).finally(() => w.terminate());
  });
  const h0 = m.harts[0]!;
  const e0 = m.engines[0]!;
  let insns0 = 0;
  while (!m.exit && performance.now() - t0 < timeoutMs) {
    insns0 += e0.run(100_000);
    h0.s[S.wfi] = 0;
  }
  const ms = performance.now() - t0;
  Atomics.store(stop, 0, 1);
  const rest = await Promise.all(done);
  return { stdout, code: m.exit?.code ?? null, insns: [insns0, ...rest], ms };
}
