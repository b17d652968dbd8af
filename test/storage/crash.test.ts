/**
 * kill -9 test: a child process writes through virtus's qcow2 backend (crash-child.ts) and
 * is killed with SIGKILL at random moments, several times over the same image. After each
 * kill, `qemu-img check` must find no errors (leaked clusters are allowed) and every byte
 * written before the last flush that returned, and not touched since, must read back.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { nodeFileSystem } from '../../src/host/node/host-file.ts';
import { createImage, openImage } from '../../src/storage/open.ts';
import { ROOT } from '../support/toolchain.ts';
import { crashOps, firstMismatch, modelOp, newModel, type DiskModel } from './crash-ops.ts';
import { qemuCheck, Rng, scratch } from './support.ts';

const CHILD = join(ROOT, 'test/storage/crash-child.ts');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the child until it has logged something, then a random while longer, then kills it. */
async function runAndKill(image: string, seed: number, log: string, waitMs: number): Promise<void> {
  writeFileSync(log, '');
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, image, String(seed), log], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));
  const started = Date.now();
  while (readFileSync(log, 'utf8').length === 0) {
    if (exitCode !== undefined) throw new Error(`crash child exited early (${exitCode}):\n${stderr}`);
    if (Date.now() - started > 60_000) throw new Error('crash child did not start');
    await sleep(10);
  }
  await sleep(waitMs);
  if (exitCode !== undefined) throw new Error(`crash child exited by itself (${exitCode}):\n${stderr}`);
  child.kill('SIGKILL');
  await exited;
}

describe('qcow2 survives kill -9 of the writing process', () => {
  const s = scratch();
  after(() => s.cleanup());

  for (const cfg of [
    { name: '64 KiB clusters', clusterSize: 65536, backing: false },
    { name: '4 KiB clusters over a raw backing file', clusterSize: 4096, backing: true },
  ]) {
    it(cfg.name, async () => {
      const size = 4 * (1 << 20);
      const image = s.path(`kill-${cfg.clusterSize}.qcow2`);
      let model: DiskModel = newModel(size);
      if (cfg.backing) {
        const base = new Rng(11).bytes(3 << 20);
        writeFileSync(s.path('kill-base.raw'), base);
        model.data.set(base);
      }
      createImage(nodeFileSystem, image, { format: 'qcow2', size, clusterSize: cfg.clusterSize, ...(cfg.backing ? { backingFile: 'kill-base.raw', backingFormat: 'raw' } : {}) });
      const rng = new Rng(cfg.clusterSize);
      for (let run = 0; run < 5; run++) {
        const seed = 7000 + run * 31 + cfg.clusterSize;
        const log = s.path(`kill-${cfg.clusterSize}-${run}.log`);
        await runAndKill(image, seed, log, 30 + rng.below(700));
        assert.ok(existsSync(image));
        // What was started, and what was flushed, before the kill.
        let started = -1;
        let flushedUpTo = 0;
        for (const line of readFileSync(log, 'utf8').split('\n')) {
          const [tag, n] = line.split(' ');
          if (tag === 'S') started = Math.max(started, Number(n));
          if (tag === 'F') flushedUpTo = Math.max(flushedUpTo, Number(n));
        }
        const flushed: DiskModel = { data: model.data.slice(), undef: model.undef.slice() };
        const touched = new Uint8Array(size);
        const ops = crashOps(seed, size, cfg.clusterSize);
        // Operations after the last flush only mark their bytes as touched (not checked).
        for (let k = 0; k <= started; k++) modelOp(flushed, k < flushedUpTo ? null : touched, ops.next().value!);

        const check = qemuCheck(image);
        assert.deepEqual([check.corruptions, check.checkErrors], [0, 0], `run ${run}: ${started + 1} ops started, ${flushedUpTo} flushed:\n${check.raw}`);
        const b = openImage(nodeFileSystem, image, { readOnly: true });
        const got = new Uint8Array(size);
        b.read(0, got);
        b.close();
        const bad = firstMismatch(got, flushed, touched);
        assert.equal(bad, -1, `run ${run}: byte ${bad} flushed as ${flushed.data[bad]} reads ${got[bad]} (${flushedUpTo} ops flushed)`);
        // The next run starts from what the disk holds now.
        model = { data: got, undef: new Uint8Array(size) };
      }
    });
  }
});
