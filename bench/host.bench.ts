/**
 * `virtus daemon` as a host: N machines of the default guest made from its image in one
 * daemon, for N = 1, 5, 10 (VIRTUS_BENCH_HOST_N overrides, e.g. "1,3"):
 *
 * - create + boot: from POST /vms {"image": "default", "count": N, "start": true} until every
 *   console showed the shell prompt; QEMU: N qemu-system-riscv64 processes of the same guest
 *   (OpenSBI, the same kernel and initramfs) started at once, until every one showed its prompt;
 * - memory per machine: the daemon's RSS divided by N 3 s after the prompts, and again once the
 *   machines have settled (below; an idle machine forgets the translations of its boot)
 *   (QEMU: the processes' RSS summed, divided by N); of the settled one, the guest memory touched
 *   (the resident part of each machine's WebAssembly.Memory, which holds 16 MiB of machine state
 *   before the RAM; QEMU: of its RAM block), and what is left, the overhead beyond it;
 * - idle CPU per machine: host CPU time over 10 s of idle prompts, as % of one core, per machine,
 *   right after the prompts, and over 30 s once the machines have settled
 *   (VIRTUS_BENCH_HOST_SETTLE_S, default 60 s later: a freshly booted kernel still finishes
 *   deferred work, and virtus still translates the code its idle path runs). The settled window
 *   is the longer one: the kernel counts CPU time in 10 ms ticks, and one idle machine takes a
 *   few ticks a second, so 10 s of it measured the same build at 0.4 % and 1.2 %;
 * - API latency: p50 and p99 of GET /vms/{id} with 100 requests in flight (1000 requests).
 *
 * Run with `npm run bench -- host`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus } from 'node:os';
import { RAM_HOST } from '../src/cpu/layout.ts';
import { ensureDefaultGuest } from '../src/host/node/guest/index.ts';
import { DEFAULT_CMDLINE } from '../src/vmm/spec.ts';
import { attach, curl, scratch, startDaemon, type Daemon } from '../test/daemon/support.ts';
import { PROMPT } from '../test/support/guest.ts';
import { requireTool } from '../test/support/toolchain.ts';
import type { Benchmark, Row } from './harness.ts';

const BOOT_MS = 30 * 60_000;
const TICK = 100; // USER_HZ

/** CPU seconds (user + system) of a process and all its threads. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
}

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

const GUEST_RAM = 256 << 20;

/**
 * Resident bytes of `pid`'s mappings whose size is in [min, max]: the guest memories of the
 * machines it runs (no other mapping of the daemon or of QEMU comes near that size).
 */
function mappingsRss(pid: number, min: number, max: number): number {
  let total = 0;
  let size = -1;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) {
      size = parseInt(range[2]!, 16) - parseInt(range[1]!, 16);
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB$/.exec(line);
    if (rss && size >= min && size <= max) total += Number(rss[1]) * 1024;
  }
  return total;
}

async function idleCpuPercent(pids: number[], seconds = 10): Promise<number> {
  const before = pids.map(cpuSeconds);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const used = pids.map(cpuSeconds).reduce((a, c, i) => a + c - before[i]!, 0);
  return (used / seconds) * 100;
}

function get(sock: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    request({ socketPath: sock, path }, (res) => {
      res.resume();
      res.on('end', () => resolve(performance.now() - t));
    }).on('error', reject).end();
  });
}

async function latency(sock: string, id: string): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next++ < 1000) times.push(await get(sock, `/vms/${id}`));
  };
  await Promise.all(Array.from({ length: 100 }, worker));
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(times.length * 0.5)]!, p99: times[Math.floor(times.length * 0.99)]! };
}

/** Seconds the machines idle before the second idle measurement. */
const SETTLE_S = Number(process.env.VIRTUS_BENCH_HOST_SETTLE_S ?? '60');
/** Seconds of the settled idle measurement. */
const SETTLED_WINDOW_S = 30;

interface Idle {
  /** RSS per machine 3 s after the prompts, and once settled (MiB). */
  promptRssMiB: number;
  rssMiB: number;
  /** Guest memory touched per machine, settled (MiB). */
  touchedMiB: number;
  /** CPU per machine over 10 s at the prompt, and over SETTLED_WINDOW_S from SETTLE_S later (% of a core). */
  idlePct: number;
  settledPct: number;
}

/**
 * What idle machines cost: memory 3 s after their prompts, CPU over the next 10 s, then, after
 * SETTLE_S, CPU over 10 s again and memory. `touched` gives one process's guest memory resident.
 */
async function idle(pids: number[], n: number, touched: (pid: number) => number): Promise<Idle> {
  await new Promise((res) => setTimeout(res, 3000));
  const rss = (): number => pids.map(rssBytes).reduce((a, b) => a + b, 0) / n / 1048576;
  const promptRssMiB = rss();
  const idlePct = (await idleCpuPercent(pids)) / n;
  await new Promise((res) => setTimeout(res, SETTLE_S * 1000));
  const settledPct = (await idleCpuPercent(pids, SETTLED_WINDOW_S)) / n;
  return { promptRssMiB, rssMiB: rss(), touchedMiB: pids.map(touched).reduce((a, b) => a + b, 0) / n / 1048576, idlePct, settledPct };
}

async function daemonRun(n: number, state: string): Promise<Idle & { bootS: number; p50: number; p99: number }> {
  const d: Daemon = await startDaemon(state);
  try {
    const t = performance.now();
    const r = curl(d.sock, 'POST', '/vms', { image: 'default', count: n, memory: GUEST_RAM, start: true });
    if (r.status !== 201) throw new Error(r.text);
    const names = (r.body.machines as Array<{ name: string }>).map((m) => m.name);
    const consoles = await Promise.all(names.map((m) => attach(d.sock, m)));
    await Promise.all(consoles.map((c) => c.waitFor(new RegExp(PROMPT), BOOT_MS)));
    const bootS = (performance.now() - t) / 1000;
    for (const c of consoles) c.close();
    const memory = GUEST_RAM + RAM_HOST;
    const costs = await idle([d.child.pid!], n, (pid) => mappingsRss(pid, memory, memory));
    const { p50, p99 } = await latency(d.sock, names[0]!);
    return { bootS, ...costs, p50, p99 };
  } finally {
    await d.stop();
  }
}

async function qemuRun(n: number): Promise<Idle & { bootS: number }> {
  requireTool('qemu-system-riscv64');
  const g = await ensureDefaultGuest({ progress: () => {} });
  const t = performance.now();
  const procs: ChildProcess[] = [];
  try {
    const prompts = Array.from({ length: n }, () => {
      const p = spawn('qemu-system-riscv64', ['-M', 'virt', '-m', `${GUEST_RAM >> 20}M`, '-smp', '1', '-nographic', '-bios', g.opensbi, '-kernel', g.kernel, '-initrd', g.initrd, '-append', DEFAULT_CMDLINE], { stdio: ['pipe', 'pipe', 'ignore'] });
      procs.push(p);
      let out = '';
      return new Promise<void>((resolve, reject) => {
        p.stdout!.on('data', (b: Buffer) => {
          out += b.toString('latin1');
          if (out.includes(PROMPT)) resolve();
        });
        p.on('exit', (code) => reject(new Error(`qemu exited (${code})`)));
      });
    });
    await Promise.all(prompts);
    const bootS = (performance.now() - t) / 1000;
    // QEMU's RAM block may be mapped with an alignment margin.
    return { bootS, ...(await idle(procs.map((p) => p.pid!), n, (pid) => mappingsRss(pid, GUEST_RAM, GUEST_RAM + (4 << 20)))) };
  } finally {
    for (const p of procs) p.kill('SIGKILL');
  }
}

export const bench: Benchmark = {
  name: 'host',
  async run() {
    await ensureDefaultGuest({ progress: (m) => process.stderr.write(`bench: ${m}\n`) });
    const ns = (process.env.VIRTUS_BENCH_HOST_N ?? '1,5,10').split(',').map(Number);
    const rows: Row[] = [];
    const s = scratch('virtus-bench-host-');
    try {
      for (const n of ns) {
        process.stderr.write(`bench: host: ${n} machine(s) in one daemon...\n`);
        const v = await daemonRun(n, s.path(`state-${n}`));
        process.stderr.write(`bench: host: ${n} QEMU process(es)...\n`);
        const q = await qemuRun(n);
        const note = `${cpus().length} host cores`;
        rows.push(
          { name: `create + boot ${n} to the prompt`, unit: 's', better: 'lower', virtus: v.bootS, qemu: q.bootS, note },
          { name: `RSS per machine at the prompt (N=${n})`, unit: 'MiB', better: 'lower', virtus: v.promptRssMiB, qemu: q.promptRssMiB, note: 'daemon RSS / N; QEMU: sum / N; 3 s after the prompts' },
          { name: `RSS per idle machine (N=${n})`, unit: 'MiB', better: 'lower', virtus: v.rssMiB, qemu: q.rssMiB, note: `the same, ${SETTLE_S + 20} s later; the rows below too` },
          { name: `guest memory touched per machine (N=${n})`, unit: 'MiB', better: 'lower', virtus: v.touchedMiB, qemu: q.touchedMiB, note: 'resident part of the guest memory (virtus: with 16 MiB of machine state)' },
          { name: `overhead per machine beyond touched guest memory (N=${n})`, unit: 'MiB', better: 'lower', virtus: v.rssMiB - v.touchedMiB, qemu: q.rssMiB - q.touchedMiB, note: 'RSS / N minus the row above' },
          { name: `overhead per machine beyond its guest RAM (N=${n})`, unit: 'MiB', better: 'lower', virtus: v.rssMiB - GUEST_RAM / 1048576, qemu: q.rssMiB - GUEST_RAM / 1048576, note: 'RSS / N minus 256 MiB; target < 64' },
          { name: `idle CPU per machine (N=${n})`, unit: '% core', better: 'lower', virtus: v.idlePct, qemu: q.idlePct, note: 'over 10 s at the prompt' },
          { name: `idle CPU per machine, settled (N=${n})`, unit: '% core', better: 'lower', virtus: v.settledPct, qemu: q.settledPct, note: `over ${SETTLED_WINDOW_S} s, ${SETTLE_S} s later` },
          { name: `GET /vms/{id} p50 (N=${n})`, unit: 'ms', better: 'lower', virtus: v.p50, note: '100 in flight, 1000 requests' },
          { name: `GET /vms/{id} p99 (N=${n})`, unit: 'ms', better: 'lower', virtus: v.p99, note: '100 in flight, 1000 requests' },
        );
      }
    } finally {
      s.cleanup();
    }
    return rows;
  },
};
