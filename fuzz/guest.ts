/**
 * Guest-side fuzzing: bare-metal RISC-V programs (test/guest/fuzz/) attack the monitor from
 * inside a virt board: random MMIO on every device, malicious virtqueue chains, random SBI
 * calls. A program is driven by a seed the host writes into its `fuzz_seed` before it starts,
 * and the machine is deterministic, so a run is reproducible from (program, seed, engine).
 *
 * What counts as a finding: the monitor throws, the guest manages to stop the machine (the
 * programs never ask to: no power-off, no exit, nothing fatal), a slice takes longer than
 * SLICE_MS (the monitor stalled), or the state the guest drove a device into is refused by
 * that device's restore() (a snapshot the guest made unrestorable). A device that goes to
 * DEVICE_NEEDS_RESET is the right answer, not a finding.
 *
 * `runGuestFuzzer` runs in this process; `runIsolated` runs it in a child process with a
 * time limit, so a hang is reported instead of hanging the caller, and the child's peak
 * resident memory is measured.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtioBlk } from '../src/devices/virtio/blk/blk.ts';
import { VirtioConsole } from '../src/devices/virtio/console/console.ts';
import { VirtioRng } from '../src/devices/virtio/rng/rng.ts';
import { nodeFileSystem } from '../src/host/node/host-file.ts';
import { Runner, type RunnerHost } from '../src/machine/runner.ts';
import { VirtBoard } from '../src/machine/virt.ts';
import { RawBackend } from '../src/storage/raw.ts';
import { buildGuest } from '../test/support/toolchain.ts';

/** A guest fuzz program and how the board boots it. */
export interface GuestFuzzer {
  /** `guest-<what>`: the name `npm run fuzz -- --guest NAME` selects. */
  readonly name: string;
  /** Sources under test/guest/. */
  readonly sources: readonly string[];
  /** 'none': the program is M-mode firmware (HTIF attached); 'builtin': an S-mode kernel under the built-in SBI. */
  readonly firmware: 'none' | 'builtin';
}

export const GUEST_FUZZERS: readonly GuestFuzzer[] = [
  { name: 'guest-mmio', sources: ['common/crt.S', 'fuzz/mmio.c'], firmware: 'none' },
  { name: 'guest-virtq', sources: ['common/crt.S', 'fuzz/virtq.c'], firmware: 'none' },
  { name: 'guest-sbi', sources: ['fuzz/sbi.c'], firmware: 'builtin' },
];

export interface GuestFuzzOptions {
  seed: number;
  /** Stop after this many guest-originated accesses (MMIO exits plus SBI calls). */
  accesses: number;
  /** Or after this many milliseconds. */
  timeMs?: number;
  engine?: 'interp' | 'jit';
}

export interface GuestFuzzResult {
  name: string;
  seed: number;
  engine: 'interp' | 'jit';
  /** Guest-originated accesses: MMIO exits (per device) and SBI calls. */
  accesses: number;
  mmio: number;
  sbiCalls: number;
  instructions: number;
  /** Operations the program counted (fuzz_ops). */
  ops: number;
  ms: number;
  /** The longest time between two slice boundaries. */
  longestSliceMs: number;
  /** Peak resident memory of the process that ran it (KiB), when run isolated. */
  peakRssKiB?: number;
  /** Devices that went to DEVICE_NEEDS_RESET, with the last reason. */
  deviceErrors: number;
  findings: string[];
}

/** RAM of the fuzzed board (the programs know its layout: fuzz.h). */
export const FUZZ_RAM = 64 << 20;
/** A slice boundary later than this after the previous one is a stall (a slice takes milliseconds). */
export const SLICE_MS = 5000;
/** The monitor's counters (per device, per SBI function) must not grow with what the guest invents. */
const COUNTERS_MAX = 64;
/** Instructions between two bursts of console input (random bytes to the UART and virtio-console). */
const INPUT_EVERY = 500_000;
/** A guest that makes no access for this long has broken itself. */
const STUCK_MS = 10_000;
/** Instructions per run() call between checks of the budget, or milliseconds. */
const CHUNK = 2_000_000;
const CHUNK_MS = 1000;

/** A host for the runner that never sleeps (the machine is deterministic: idling skips time). */
const host: RunnerHost = {
  yield: () => new Promise((r) => setImmediate(r)),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  wake() {},
};

/** The fuzzed board: 64 MiB, deterministic, a raw disk (4 MiB), a console and an rng. */
function makeBoard(disk: string, engine: 'interp' | 'jit', output: (b: Uint8Array) => void): VirtBoard {
  const board = new VirtBoard({ ramSize: FUZZ_RAM, deterministic: true, engine, console: output });
  board.attachVirtio(new VirtioBlk(new RawBackend(nodeFileSystem.open(disk, { writable: true })), { name: 'virtio-blk0', serial: 'fuzz' }));
  board.attachVirtio(new VirtioConsole({ output }));
  board.attachVirtio(new VirtioRng({ seed: 1 }));
  board.onVirtioError = () => {};
  return board;
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}${e.stack ? `\n${e.stack.split('\n').slice(1, 8).join('\n')}` : ''}`;
  return String(e);
}

/** Every device's saved state, restored into a fresh board's devices: what a snapshot would do. */
function checkRestore(board: VirtBoard, fresh: VirtBoard): string[] {
  const out: string[] = [];
  // Every row of the board's table, and the built-in SBI.
  type Saves = { save?(): unknown; restore?(s: unknown): void };
  const rows = fresh.devices();
  const pairs: Array<[string, Saves, Saves]> = [
    ...board.devices().map(({ row, device }, i): [string, Saves, Saves] => [row.id, device as Saves, rows[i]!.device as Saves]),
    ['sbi', board.sbi, fresh.sbi],
  ];
  for (const [name, from, to] of pairs) {
    if (!from.save || !to.restore) continue;
    try {
      to.restore(JSON.parse(JSON.stringify(from.save())));
    } catch (e) {
      out.push(`${name}: the state the guest left cannot be restored: ${describe(e)}`);
    }
  }
  return out;
}

/** Builds the program's ELF (test/support/toolchain.ts: Debian's riscv64-unknown-elf-gcc). */
export function buildFuzzer(f: GuestFuzzer): string {
  return buildGuest(`fuzz-${f.name}`, [...f.sources]);
}

/** Runs `f` in this process. Never throws for the monitor's sake: what goes wrong is a finding. */
export async function runGuestFuzzer(f: GuestFuzzer, o: GuestFuzzOptions): Promise<GuestFuzzResult> {
  const engine = o.engine ?? 'interp';
  const elf = readFileSync(buildFuzzer(f));
  const dir = mkdtempSync(join(tmpdir(), 'virtus-fuzz-'));
  const disk = join(dir, 'disk.img');
  writeFileSync(disk, '');
  truncateSync(disk, 4 << 20);
  const findings: string[] = [];
  let output = 0;
  const board = makeBoard(disk, engine, (b) => void (output += b.length));
  const m = board.machine;
  let last = performance.now();
  let longest = 0;
  // Console input for the UART and virtio-console, at instruction counts (so a run repeats).
  let inputAt = INPUT_EVERY;
  let x = o.seed >>> 0 || 1;
  const con = board.virtio.map((t) => t.device).find((d): d is VirtioConsole => d instanceof VirtioConsole)!;
  m.addSliceHook(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (m.instret() < inputAt) return;
    inputAt += INPUT_EVERY;
    const bytes = Uint8Array.from({ length: 1 + (x % 64) }, () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 16) & 0xff);
    board.consoleInput(bytes);
    con.write(bytes);
  });
  const info = board.boot({ kernel: elf, kernelName: f.name, firmware: f.firmware });
  const sym = (name: string): number => {
    const a = info.symbols.get(name);
    if (a === undefined) throw new Error(`${f.name} has no symbol ${name}`);
    return a;
  };
  if (f.firmware === 'none') m.attachHtif(sym('tohost'), sym('fromhost'));
  m.ram.writeU64(sym('fuzz_seed'), BigInt(o.seed >>> 0));
  const accesses = () => [...m.bus.accessCounts.values()].reduce((a, n) => a + n, 0) + [...board.sbi.calls.values()].reduce((a, n) => a + n, 0);
  const start = performance.now();
  const runner = new Runner(m, host);
  let seen = { accesses: 0, at: start };
  try {
    while (accesses() < o.accesses && (o.timeMs === undefined || performance.now() - start < o.timeMs)) {
      last = performance.now();
      // A guest that traps at its first instruction retires nothing: stop by the clock too.
      const timer = setTimeout(() => runner.requestStop(), CHUNK_MS);
      const exit = await runner.run({ maxInsns: m.instret() + CHUNK });
      clearTimeout(timer);
      if (exit && exit.reason !== 'max-insns') {
        findings.push(`the guest stopped the machine: ${exit.reason} (code ${exit.code})${exit.message ? `: ${exit.message}` : ''}`);
        break;
      }
      m.exit = null;
      const now = performance.now();
      if (accesses() > seen.accesses) seen = { accesses: accesses(), at: now };
      else if (now - seen.at > STUCK_MS) {
        // The program broke itself (a device wrote over it?): the run says nothing more.
        findings.push(`the guest made no access for ${STUCK_MS} ms (pc 0x${m.harts[0]!.pcBig.toString(16)}): the fuzz program is broken`);
        break;
      }
    }
  } catch (e) {
    findings.push(`the monitor threw: ${describe(e)}`);
  }
  const ms = performance.now() - start;
  if (longest > SLICE_MS) findings.push(`a slice took ${longest.toFixed(0)} ms (limit ${SLICE_MS} ms)`);
  for (const [what, n] of [['device counters', m.bus.accessCounts.size], ['SBI counters', board.sbi.calls.size]] as const) {
    if (n > COUNTERS_MAX) findings.push(`${n} ${what}: the monitor's statistics grow with what the guest does`);
  }
  try {
    findings.push(...checkRestore(board, makeBoard(disk, engine, () => {})));
  } catch (e) {
    findings.push(`saving the devices threw: ${describe(e)}`);
  }
  const mmio = [...m.bus.accessCounts.values()].reduce((a, n) => a + n, 0);
  const sbiCalls = [...board.sbi.calls.values()].reduce((a, n) => a + n, 0);
  const deviceErrors = board.virtio.reduce((a, t) => a + (t.counters()['driver errors'] ?? 0), 0);
  for (const t of board.virtio) t.device && 'backend' in t.device && (t.device as VirtioBlk).backend.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    name: f.name, seed: o.seed, engine, accesses: mmio + sbiCalls, mmio, sbiCalls, instructions: m.instret(),
    ops: Number(m.ram.readU64(sym('fuzz_ops'))), ms, longestSliceMs: longest, deviceErrors, findings,
  };
}

/**
 * Runs `f` in a child process (fuzz/guest-child.ts) with a time limit: a hang or a crash of
 * the whole process becomes a finding, and the child's peak resident memory is measured.
 */
export function runIsolated(f: GuestFuzzer, o: GuestFuzzOptions & { limitMs: number }): Promise<GuestFuzzResult> {
  return new Promise((resolve) => {
    const args = ['--import', 'tsx', new URL('./guest-child.ts', import.meta.url).pathname, f.name, String(o.seed), String(o.accesses), String(o.timeMs ?? 0), o.engine ?? 'interp'];
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const t = performance.now();
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      p.kill('SIGKILL');
    }, o.limitMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as GuestFuzzResult);
      } catch {
        const why = killed ? `hung: no answer after ${o.limitMs} ms` : `the process died (exit ${code})`;
        resolve({
          name: f.name, seed: o.seed, engine: o.engine ?? 'interp', accesses: 0, mmio: 0, sbiCalls: 0, instructions: 0, ops: 0,
          ms: performance.now() - t, longestSliceMs: 0, deviceErrors: 0, findings: [`${why}\n${stderr.split('\n').slice(-12).join('\n')}`],
        });
      }
    });
  });
}

export interface GuestCampaign {
  /** Fuzzer names to run (substrings; all when empty). */
  names: string[];
  seed: number;
  /** Accesses per fuzzer. */
  accesses: number;
  /** Time for all of them together (split evenly), or none. */
  timeMs?: number;
  engine: 'interp' | 'jit';
  log: (line: string) => void;
}

/**
 * `npm run fuzz -- --guest`: runs each selected guest fuzzer in its own process and logs one
 * line per run (accesses, time, rate, peak memory) and each finding with the command that
 * repeats it. Returns the number of findings.
 */
export async function fuzzGuests(c: GuestCampaign): Promise<number> {
  const chosen = GUEST_FUZZERS.filter((f) => c.names.length === 0 || c.names.some((n) => f.name.includes(n)));
  if (!chosen.length) throw new Error(`no guest fuzzer matched (names: ${GUEST_FUZZERS.map((g) => g.name).join(', ')})`);
  const share = c.timeMs !== undefined ? c.timeMs / chosen.length : undefined;
  let findings = 0;
  for (const f of chosen) {
    buildFuzzer(f);
    // A run is stopped by its budget; the limit only catches a monitor that stopped answering.
    const limitMs = (share ?? c.accesses / 5) + 120_000;
    const r = await runIsolated(f, { seed: c.seed, accesses: c.accesses, engine: c.engine, limitMs, ...(share !== undefined ? { timeMs: share } : {}) });
    const rate = r.ms > 0 ? Math.round((r.accesses / r.ms) * 1000) : 0;
    c.log(`${f.name.padEnd(12)} seed ${r.seed} ${r.engine.padEnd(6)} ${String(r.accesses).padStart(10)} accesses (${r.mmio} MMIO, ${r.sbiCalls} SBI) ${(r.ms / 1000).toFixed(1).padStart(6)} s ${String(rate).padStart(7)}/s  peak RSS ${Math.round((r.peakRssKiB ?? 0) / 1024)} MiB  ${r.findings.length ? `${r.findings.length} FINDINGS` : 'ok'}`);
    for (const x of r.findings) c.log(`  ${x.split('\n')[0]}\n  repeat: node --import tsx fuzz/guest-child.ts ${f.name} ${r.seed} ${c.accesses} ${share ?? 0} ${r.engine}`);
    findings += r.findings.length;
  }
  return findings;
}
