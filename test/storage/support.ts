/**
 * Test support for block storage: scratch directories, qemu-img/qemu-io as the reference,
 * whole-disk checksums, and a seeded random generator for workloads.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockBackend } from '../../src/storage/backend.ts';

/** Throws a clear error when a QEMU tool (Debian package qemu-utils) is missing. */
export function requireQemu(tool: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${tool} is not installed (Debian package qemu-utils); .ci/run installs it`);
}

/** A scratch directory, removed by the returned cleanup. */
export function scratch(): { dir: string; path(name: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'virtus-storage-'));
  return { dir, path: (n) => join(dir, n), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs a QEMU tool; throws with its stderr unless it exits with one of `ok` (default 0). */
export function qemu(tool: 'qemu-img' | 'qemu-io', args: string[], ok: number[] = [0], cwd?: string): string {
  requireQemu(tool);
  const r = spawnSync(tool, args, { encoding: 'utf8', timeout: 120_000, ...(cwd ? { cwd } : {}) });
  if (!ok.includes(r.status ?? -1)) throw new Error(`${tool} ${args.join(' ')} exited ${r.status}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

export interface CheckResult {
  corruptions: number;
  leaks: number;
  checkErrors: number;
  raw: string;
}

/** `qemu-img check --output=json`: counts of corruptions and leaks (exit 2 = corrupt, 3 = leaks). */
export function qemuCheck(path: string): CheckResult {
  requireQemu('qemu-img');
  const r = spawnSync('qemu-img', ['check', '--output=json', path], { encoding: 'utf8' });
  let j: Record<string, number> = {};
  try {
    j = JSON.parse(r.stdout);
  } catch {
    throw new Error(`qemu-img check ${path} exited ${r.status}: ${r.stderr}`);
  }
  return { corruptions: j.corruptions ?? 0, leaks: j.leaks ?? 0, checkErrors: j['check-errors'] ?? 0, raw: r.stdout + r.stderr };
}

/** SHA-256 of the whole virtual disk as QEMU reads it (qemu-img convert -O raw). */
export function qemuDiskHash(path: string, dir: string, format?: string): string {
  const out = join(dir, `hash-${Math.random().toString(36).slice(2)}.raw`);
  qemu('qemu-img', ['convert', ...(format ? ['-f', format] : []), '-O', 'raw', path, out]);
  const h = sha256(readFileSync(out));
  rmSync(out);
  return h;
}

/** SHA-256 of the whole virtual disk as a virtus backend reads it (in 1 MiB reads). */
export function diskHash(b: BlockBackend): string {
  const h = createHash('sha256');
  const buf = new Uint8Array(1 << 20);
  for (let off = 0; off < b.size; off += buf.length) {
    const n = Math.min(buf.length, b.size - off);
    b.read(off, buf.subarray(0, n));
    h.update(buf.subarray(0, n));
  }
  return h.digest('hex');
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A small seeded generator (xorshift32), so a failing workload can be replayed. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.next() / 2 ** 32) * n);
  }
  /** `n` bytes of data that compress poorly but are cheap to make. */
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.next();
      b[i] = v;
      b[i + 1] = v >>> 8;
      b[i + 2] = v >>> 16;
      b[i + 3] = v >>> 24;
    }
    return b;
  }
}
