/**
 * Test support for migrations between processes: `virtus run` children whose consoles are
 * kept and waited on (never fixed sleeps), the human monitor on a unix socket, free loopback
 * ports, the rewrite workload (test/guest/migrate/rewrite.c) and its reference output from an
 * uninterrupted run on QEMU's virt machine.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGuest, requireTool, VIRTUS } from './toolchain.ts';

/** A child process with its output kept. */
export interface Proc {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when `re` matches stdout or stderr (or the one named); rejects if the process exits first. */
  waitFor(re: RegExp, stream?: 'stdout' | 'stderr'): Promise<void>;
  /** The exit code (null: killed by a signal). */
  exit: Promise<number | null>;
}

const live = new Set<ChildProcess>();

/** Kills every process startProc started that still runs (a test's `after`, so a failed test leaves none behind). */
export function killAll(): void {
  for (const c of live) c.kill('SIGKILL');
}

/** Starts `command args` (default: the virtus CLI under this Node); killed after `limitMs`. */
export function startProc(args: string[], o: { command?: string; env?: Record<string, string>; limitMs?: number } = {}): Proc {
  const cmd = o.command ?? process.execPath;
  const argv = o.command ? args : [VIRTUS, ...args];
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
  const out = { stdout: '', stderr: '' };
  const waiters: Array<() => void> = [];
  for (const s of ['stdout', 'stderr'] as const) {
    child[s]!.setEncoding('utf8');
    child[s]!.on('data', (d: string) => {
      out[s] += d;
      for (const w of waiters.splice(0)) w();
    });
  }
  live.add(child);
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => (live.delete(child), r(code))));
  const timer = setTimeout(() => child.kill('SIGKILL'), o.limitMs ?? 120_000);
  void exit.then(() => clearTimeout(timer));
  return {
    child,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    exit,
    waitFor(re, stream) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (re.test(stream ? out[stream] : out.stdout + out.stderr)) resolve();
          else waiters.push(check);
        };
        void exit.then((code) => {
          if (!re.test(stream ? out[stream] : out.stdout + out.stderr)) reject(new Error(`exited (${code}) before ${re}:\n${out.stdout.slice(-500)}\n${out.stderr}`));
        });
        check();
      });
    },
  };
}

/** Sends human monitor commands on a unix socket; resolves with the JSON answers (rejects after 60 s without them). */
export function monitor(path: string, ...lines: string[]): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`monitor ${path}: no answer to ${lines.join('; ')} in 60 s (got ${JSON.stringify(buf)})`));
    }, 60_000);
    s.once('close', () => clearTimeout(timer));
    s.setEncoding('utf8');
    s.on('error', reject);
    s.on('close', () => reject(new Error(`monitor ${path} closed after ${buf}`)));
    s.on('data', (d: string) => {
      buf += d;
      const got = buf.split('\n').filter(Boolean);
      if (got.length === lines.length) {
        s.end();
        resolve(got.map((l) => JSON.parse(l) as Record<string, unknown>));
      }
    });
    s.write(lines.map((l) => l + '\n').join(''));
  });
}

/** A loopback port free now. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** The rewrite workload: `sweeps` rewrites of `mib` MiB, one word in `stride` written. */
export function rewriteGuest(sweeps: number, o: { mib?: number; stride?: number } = {}): string {
  const mib = o.mib ?? 64;
  const stride = o.stride ?? 1;
  return buildGuest(`migrate-rewrite-${mib}m-${sweeps}-${stride}`, ['common/crt.S', 'migrate/rewrite.c'], {
    cflags: [`-DSWEEPS=${sweeps}`, `-DWORDS=(${mib}u<<17)`, `-DSTRIDE=${stride}`],
  });
}

/** Runs a bare-metal ELF uninterrupted on QEMU's virt machine; the console as text. */
export function runQemuVirt(elf: string, memory = '256M'): { status: number | null; stdout: string; stderr: string } {
  requireTool('qemu-system-riscv64');
  const dir = mkdtempSync(join(tmpdir(), 'virtus-qemu-virt-'));
  const out = join(dir, 'console');
  try {
    const r = spawnSync('qemu-system-riscv64', ['-M', 'virt', '-m', memory, '-bios', 'none', '-kernel', elf, '-display', 'none', '-monitor', 'none', '-serial', `file:${out}`], {
      encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { status: r.status, stdout: existsSync(out) ? readFileSync(out, 'utf8') : '', stderr: String(r.stderr ?? '') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The `migrated to ...` line of a source: its numbers. */
export interface MigratedLine {
  totalMs: number;
  downtimeMs: number;
  rounds: number;
  bytes: number;
  throttle: number;
  line: string;
}

export function migratedLine(stderr: string): MigratedLine | null {
  const m = /migrated to \S+: total (\d+) ms, downtime ([\d.]+) ms, (\d+) rounds, (\d+) bytes sent \([^)]*\), throttle up to (\d+)%/.exec(stderr);
  if (!m) return null;
  return { totalMs: Number(m[1]), downtimeMs: Number(m[2]), rounds: Number(m[3]), bytes: Number(m[4]), throttle: Number(m[5]), line: m[0] };
}
