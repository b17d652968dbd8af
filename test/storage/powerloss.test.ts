/**
 * Power-loss simulation for the qcow2 write ordering. A host file that remembers which
 * writes happened since the last barrier is "crashed" at a random moment: each 512-byte
 * sector written since the last flush ends up holding any one of its versions (or the old
 * contents), in any combination; that is what a disk cache may leave after a power cut.
 * Every crashed image must pass `qemu-img check` without errors (leaks are allowed) and
 * read back every byte that was flushed and not touched since.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { nodeFileSystem } from '../../src/host/node/host-file.ts';
import type { HostFile } from '../../src/storage/host-file.ts';
import { MemoryFileSystem, MemoryHostFile } from '../../src/storage/host-file.ts';
import { createImage, openImage } from '../../src/storage/open.ts';
import { readHeader } from '../../src/storage/qcow2/header.ts';
import { Qcow2Backend } from '../../src/storage/qcow2/qcow2.ts';
import { RawBackend } from '../../src/storage/raw.ts';
import { applyOp, crashOps, firstMismatch, modelOp, newModel, type DiskModel } from './crash-ops.ts';
import { qemuCheck, Rng, scratch } from './support.ts';

/** Thrown by CrashFile when its budget of I/O events runs out: the process "dies" there. */
class CrashNow extends Error {}

/**
 * A HostFile that can be crashed: durable contents plus the writes since the last barrier.
 * After `budget` writes and barriers it throws CrashNow, so crashes also land in the middle
 * of a flush, between any two of its writes.
 */
class CrashFile implements HostFile {
  readonly name = 'crash.qcow2';
  readonly readOnly = false;
  budget = Infinity;
  /** Barriers still allowed before the crash (a crash just before a barrier). */
  barrierBudget = Infinity;
  /** Barriers passed so far. */
  barriers = 0;
  private readonly current: MemoryHostFile;
  private durable: Uint8Array;
  private pending: { pos: number; data: Uint8Array }[] = [];

  constructor(initial: Uint8Array) {
    this.current = new MemoryHostFile('crash.qcow2', initial);
    this.durable = initial.slice();
  }
  read(position: number, buf: Uint8Array): number {
    return this.current.read(position, buf);
  }
  private spend(): void {
    if (--this.budget < 0) throw new CrashNow();
  }
  write(position: number, buf: Uint8Array): void {
    this.spend();
    this.current.write(position, buf);
    this.pending.push({ pos: position, data: buf.slice() });
  }
  size(): number {
    return this.current.size();
  }
  truncate(): void {
    throw new Error('the backend must not truncate while running');
  }
  flush(): void {
    this.spend();
    if (--this.barrierBudget < 0) throw new CrashNow();
    this.barriers++;
    this.durable = this.current.contents();
    this.pending = [];
  }
  close(): void {}

  /** What the file might hold after a power cut now. */
  crash(rng: Rng): Uint8Array {
    let img = this.durable.slice();
    for (const w of this.pending) {
      for (let s = Math.floor(w.pos / 512) * 512; s < w.pos + w.data.length; s += 512) {
        if (rng.below(2) === 0) continue;
        const from = Math.max(s, w.pos);
        const to = Math.min(s + 512, w.pos + w.data.length);
        if (to > img.length) {
          const grown = new Uint8Array(to);
          grown.set(img);
          img = grown;
        }
        img.set(w.data.subarray(from - w.pos, to - w.pos), from);
      }
    }
    return img;
  }
}

const SIZE = 3 * (1 << 20) + 1024;
const configs = [
  { name: '64 KiB clusters', o: { clusterSize: 65536 }, backing: false },
  { name: '512 B clusters, 1-bit refcounts (new refcount blocks)', o: { clusterSize: 512, refcountBits: 1 }, backing: false },
  // Bigger operations, so that the host file outgrows the 2 MiB the first refcount table covers.
  { name: '512 B clusters, 64-bit refcounts (refcount table growth)', o: { clusterSize: 512, refcountBits: 64 }, backing: false, opScale: 65536 },
  { name: '4 KiB clusters over a raw backing file', o: { clusterSize: 4096 }, backing: true },
  { name: 'v2, 4 KiB clusters over a raw backing file', o: { clusterSize: 4096, version: 2 as const }, backing: true },
];

const clone = (m: DiskModel): DiskModel => ({ data: m.data.slice(), undef: m.undef.slice() });

type Config = (typeof configs)[number];

/**
 * One run: applies up to `maxOps` operations of `seed` until the crash file's budget runs
 * out, then checks the crashed image. Returns the number of barriers the run passed.
 */
function trial(dir: string, cfg: Config, seed: number, budget: { events?: number; barriers?: number; maxOps: number; crashSeed?: number }): number {
  const rng = new Rng(budget.crashSeed ?? seed);
  const baseData = new Rng(3).bytes(2 << 20);
  const fs = new MemoryFileSystem();
  if (cfg.backing) fs.create('base.raw').write(0, baseData);
  createImage(fs, 'disk.qcow2', { format: 'qcow2', size: SIZE, ...cfg.o, ...(cfg.backing ? { backingFile: 'base.raw', backingFormat: 'raw' } : {}) });
  const file = new CrashFile((fs.open('disk.qcow2', { writable: true }) as MemoryHostFile).contents());
  const backing = cfg.backing ? new RawBackend(fs.open('base.raw', { writable: false })) : null;
  const b = new Qcow2Backend(file, readHeader(file), { readOnly: false, backing });
  const model = newModel(SIZE);
  if (cfg.backing) model.data.set(baseData);
  let flushed = clone(model);
  const touched = new Uint8Array(SIZE);
  const ops = crashOps(seed, SIZE, 'opScale' in cfg ? cfg.opScale! : cfg.o.clusterSize);
  file.budget = budget.events ?? Infinity;
  file.barrierBudget = budget.barriers ?? Infinity;
  let k = 0;
  try {
    for (; k < budget.maxOps; k++) {
      const op = ops.next().value!;
      modelOp(model, touched, op); // touched before it starts: it may be cut short
      applyOp(b, op);
      if (op.kind === 'flush') {
        flushed = clone(model);
        touched.fill(0);
      }
    }
  } catch (e) {
    if (!(e instanceof CrashNow)) throw e;
  }
  const where = `seed ${seed}, crash after ${k} ops and ${file.barriers} barriers`;
  if (cfg.backing) writeFileSync(join(dir, 'base.raw'), baseData);
  const path = join(dir, 'crash.qcow2');
  writeFileSync(path, file.crash(rng));
  const check = qemuCheck(path);
  assert.deepEqual([check.corruptions, check.checkErrors], [0, 0], `${where}:\n${check.raw}`);
  const r = openImage(nodeFileSystem, path, { readOnly: true });
  const got = new Uint8Array(SIZE);
  r.read(0, got);
  r.close();
  const bad = firstMismatch(got, flushed, touched);
  assert.equal(bad, -1, `${where}: flushed byte ${bad} reads ${got[bad]}, want ${flushed.data[bad]}`);
  return file.barriers;
}

describe('qcow2 survives simulated power loss at any moment', () => {
  const s = scratch();
  after(() => s.cleanup());
  for (const cfg of configs) {
    it(`${cfg.name}: crashes at random writes`, () => {
      const trials = Number(process.env.POWERLOSS_TRIALS ?? 20);
      for (let t = 0; t < trials; t++) {
        const seed = 1000 * t + cfg.name.length;
        trial(s.dir, cfg, seed, { events: 1 + new Rng(seed + 1).below(800), maxOps: 400 });
      }
    });
    it(`${cfg.name}: a crash just before each barrier of one run`, () => {
      const seed = 4242 + cfg.name.length;
      const barriers = trial(s.dir, cfg, seed, { maxOps: 100 });
      assert.ok(barriers > 10);
      for (let n = 0; n <= barriers; n++) trial(s.dir, cfg, seed, { barriers: n, maxOps: 100, crashSeed: n + 1 });
    });
  }
});
