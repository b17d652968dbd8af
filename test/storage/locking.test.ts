/**
 * Image locking as QEMU does it: OFD locks on bytes 100+perm and 200+perm of the image file,
 * so virtus and qemu-io see each other. A writer excludes other writers and readers that do
 * not share writes; readers share with readers; -U/--force-share and locking=off go ahead.
 * The holders are real processes: `virtus run` with a bare program that spins (its drive
 * stays open), `qemu-io` in interactive mode, and the default guest on `--root disk`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { tinyElf } from '../../fuzz/targets/kernel.ts';
import { NodeVmHost } from '../../src/host/node/vm-host.ts';
import { runVirtus, VIRTUS } from '../support/toolchain.ts';
import { qemu, requireQemu, scratch } from './support.ts';

/** Bytes of `path` that some process holds an OFD lock on (from /proc/locks). */
function lockedBytes(path: string): number[] {
  if (!existsSync(path)) return [];
  const ino = statSync(path).ino;
  const out: number[] = [];
  for (const m of readFileSync('/proc/locks', 'utf8').matchAll(/OFDLCK\s+ADVISORY\s+\w+\s+-?\d+\s+[0-9a-f]+:[0-9a-f]+:(\d+)\s+(\d+)\s+(\d+)/g)) {
    if (Number(m[1]) !== ino) continue;
    for (let b = Number(m[2]); b <= Number(m[3]); b++) out.push(b);
  }
  return out.sort((a, b) => a - b);
}

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Holder {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

function hold(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Holder {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  let text = '';
  child.stdout!.on('data', (b: Buffer) => (text += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (text += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    output: () => text,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

describe('image locking', () => {
  const s = scratch();
  const holders: Holder[] = [];
  let spin = '';
  before(() => {
    requireQemu('qemu-io');
    spin = s.path('spin.elf');
    writeFileSync(spin, tinyElf());
  });
  after(async () => {
    for (const h of holders) await h.stop();
    s.cleanup();
  });

  /** `virtus run` of a program that spins, with `drive`: its drives stay open until it is killed. */
  const machine = async (drive: string, locked: string, bytes: number): Promise<Holder> => {
    const h = hold(process.execPath, [VIRTUS, 'run', '--kernel', spin, '--bios', 'none', '--drive', drive]);
    holders.push(h);
    await until(`virtus to lock ${locked}`, () => lockedBytes(locked).length >= bytes || h.child.exitCode !== null);
    assert.equal(h.child.exitCode, null, h.output());
    return h;
  };
  /** `qemu-io` holding the image open (interactive: it waits on its standard input). */
  const qemuIo = async (args: string[], locked: string, bytes: number): Promise<Holder> => {
    const h = hold('qemu-io', args);
    holders.push(h);
    await until('qemu-io to lock the image', () => lockedBytes(locked).length >= bytes || h.child.exitCode !== null);
    assert.equal(h.child.exitCode, null, h.output());
    return h;
  };
  const run = (drive: string) => runVirtus(['run', '--kernel', spin, '--bios', 'none', '--drive', drive, '--dtb-dump', s.path('x.dtb')]);
  const image = (name: string, fmt = 'qcow2') => {
    qemu('qemu-img', ['create', '-f', fmt, s.path(name), '16M']);
    return s.path(name);
  };

  it('virtus takes the same lock bytes as qemu-io, and a second virtus on the disk is refused', async () => {
    const disk = image('a.qcow2');
    const q = await qemuIo([disk], disk, 5);
    const theirs = lockedBytes(disk);
    await q.stop();
    const m = await machine(`file=${disk}`, disk, 5);
    assert.deepEqual(lockedBytes(disk), theirs, 'read-write: bytes 100, 101, 103, 201, 203');
    assert.deepEqual(theirs, [100, 101, 103, 201, 203]);
    const second = run(`file=${disk}`);
    assert.equal(second.status, 2, second.stderr);
    assert.equal(second.stderr, `virtus: --drive ${disk}: Failed to get "write" lock. Is another process using the image [${disk}]? virtus (pid ${m.child.pid}) has it open.\n`);
    // Read-only is refused too: the writer does not share writes with readers that deny them.
    assert.match(run(`file=${disk},readonly=on`).stderr, /Failed to get shared "write" lock/);
    // locking=off goes ahead, as QEMU's file.locking=off.
    assert.equal(run(`file=${disk},readonly=on,locking=off`).status, 0);
    await m.stop();
    assert.deepEqual(lockedBytes(disk), [], 'the locks go with the process');
    assert.equal(run(`file=${disk}`).status, 0);
  });

  it('virtus against qemu-io, both ways, qcow2 and raw', async () => {
    for (const fmt of ['qcow2', 'raw']) {
      const disk = image(`b.${fmt}`, fmt);
      const m = await machine(`file=${disk},format=${fmt}`, disk, 5);
      const w = qemu('qemu-io', ['-f', fmt, '-c', 'write 0 4k', disk], [1]);
      assert.equal(w, '');
      const r = await new Promise<string>((resolve) => {
        const c = spawn('qemu-io', ['-f', fmt, '-c', 'write 0 4k', disk]);
        let err = '';
        c.stderr.on('data', (b: Buffer) => (err += b.toString()));
        c.on('exit', () => resolve(err));
      });
      assert.match(r, /Failed to get "write" lock\nIs another process using the image/);
      // qemu-img -U reads it; virtus image info -U too, and without -U it is refused.
      qemu('qemu-img', ['info', '-U', disk]);
      assert.equal(runVirtus(['image', 'info', '-U', disk]).status, 0);
      const info = runVirtus(['image', 'info', disk]);
      assert.equal(info.status, 1);
      assert.match(info.stderr, new RegExp(`^virtus: Failed to get shared "write" lock\\. Is another process using the image \\[${disk}\\]\\? virtus \\(pid ${m.child.pid}\\) has it open\\.\\n$`));
      await m.stop();

      const q = await qemuIo(['-f', fmt, disk], disk, 2);
      const v = run(`file=${disk},format=${fmt}`);
      assert.equal(v.status, 2, v.stderr);
      // qemu-io shares writes on raw, so only virtus's own denial fails there.
      assert.match(v.stderr, fmt === 'qcow2' ? /Failed to get "write" lock/ : /Failed to get shared "write" lock/);
      assert.match(v.stderr, new RegExp(`qemu-io \\(pid ${q.child.pid}\\) has it open`));
      const conv = runVirtus(['image', 'convert', '-f', fmt, disk, s.path('copy.raw')]);
      assert.equal(conv.status, 1, conv.stderr);
      assert.equal(runVirtus(['image', 'convert', '-U', '-f', fmt, disk, s.path('copy.raw')]).status, 0);
      await q.stop();
    }
  });

  it('readers share: readonly=on twice, with qemu-io -r, and overlays over one base', async () => {
    const base = image('base.qcow2');
    const r1 = await machine(`file=${base},readonly=on`, base, 3);
    assert.deepEqual(lockedBytes(base), [100, 201, 203]);
    assert.equal(run(`file=${base},readonly=on`).status, 0);
    qemu('qemu-io', ['-r', '-c', 'read 0 4k', base]);
    assert.equal(run(`file=${base},overlay=auto`).status, 0, 'an overlay reads its base');
    assert.match(run(`file=${base}`).stderr, /Failed to get "write" lock/);
    await r1.stop();
    // Two machines on overlays of one base, and the same persistent overlay twice.
    const o1 = await machine(`file=${base},overlay=${s.path('o1.qcow2')}`, s.path('o1.qcow2'), 5);
    assert.equal(run(`file=${base},overlay=auto`).status, 0);
    const again = run(`file=${base},overlay=${s.path('o1.qcow2')}`);
    assert.equal(again.status, 2);
    assert.match(again.stderr, new RegExp(`Failed to get "write" lock\\. Is another process using the image \\[${s.path('o1.qcow2')}\\]\\? virtus \\(pid ${o1.child.pid}\\)`));
    // image create does not empty an image in use.
    const size = statSync(s.path('o1.qcow2')).size;
    assert.equal(runVirtus(['image', 'create', s.path('o1.qcow2'), '1M']).status, 1);
    assert.equal(statSync(s.path('o1.qcow2')).size, size);
    await o1.stop();
  });

  it('--root disk twice: the second machine is refused before it boots', async () => {
    // A root disk of its own (a copy of the default guest's), so no user's disk is touched.
    const env = { ...process.env, VIRTUS_DATA_DIR: s.path('data') };
    const disk = s.path('data/root.img');
    const first = hold(process.execPath, [VIRTUS, 'run', '--root', 'disk'], env);
    holders.push(first);
    await until('the first machine to lock its root disk', () => lockedBytes(disk).length >= 5 || first.child.exitCode !== null, 600_000);
    assert.equal(first.child.exitCode, null, first.output());
    const second = runVirtus(['run', '--root', 'disk'], { env });
    assert.equal(second.status, 2, second.stdout + second.stderr);
    assert.equal(second.stdout, '', 'the second machine never started');
    assert.equal(second.stderr, `virtus: --drive ${disk}: Failed to get "write" lock. Is another process using the image [${disk}]? virtus (pid ${first.child.pid}) has it open.\n`);
    await first.stop();
  });

  it('a migration target prepares a disk its source still holds: it reads it, takes no lock and keeps no file', async () => {
    const base = image('pb.qcow2');
    const top = s.path('pt.qcow2');
    qemu('qemu-img', ['create', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top]);
    const q = await qemuIo([top], top, 5);
    await until('qemu-io to lock the base', () => lockedBytes(base).length >= 2);
    const held = [lockedBytes(top), lockedBytes(base)];
    const fds = () => readdirSync('/proc/self/fd').length;
    const host = new NodeVmHost({ warn: () => {} });
    const spec = { file: top, readonly: false, locking: true, serial: '' };
    const open = fds();
    host.prepareDisk(spec);
    assert.equal(fds(), open, 'no file of the chain is kept open');
    assert.deepEqual([lockedBytes(top), lockedBytes(base)], held, "the holder's locks, and no others");
    // The handover's open is still refused while the source holds the image.
    assert.throws(() => host.openDisk(spec), /Failed to get "write" lock/);
    await q.stop();
    host.openDisk(spec).close();
    const idle = fds();
    // It never fails and never creates: a missing image, a corrupt one, overlays.
    writeFileSync(s.path('junk.qcow2'), Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), Buffer.alloc(600, 0xff)]));
    const temps = readdirSync(tmpdir()).length;
    for (const d of [
      { ...spec, file: s.path('missing.qcow2') },
      { ...spec, file: s.path('junk.qcow2'), format: 'qcow2' as const },
      { ...spec, overlay: 'auto' },
      { ...spec, overlay: s.path('new-overlay.qcow2') },
    ]) host.prepareDisk(d);
    assert.equal(existsSync(s.path('new-overlay.qcow2')), false, 'an overlay is made by the open, not the preparation');
    assert.equal(readdirSync(tmpdir()).length, temps, 'no temporary overlay');
    assert.equal(fds(), idle, 'no file kept open');
  });

  it('image commit writes the base through a second open of it; a machine on the base stops it', async () => {
    const base = image('cb.qcow2');
    const top = s.path('ct.qcow2');
    qemu('qemu-img', ['create', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top]);
    qemu('qemu-io', ['-c', 'write -P 7 0 64k', top]);
    const m = await machine(`file=${base},readonly=on`, base, 3);
    const c = runVirtus(['image', 'commit', top]);
    assert.equal(c.status, 1);
    assert.match(c.stderr, /Failed to get "write" lock/);
    await m.stop();
    const ok = runVirtus(['image', 'commit', top]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(qemu('qemu-io', ['-c', 'read -P 7 0 64k', base]), /read 65536\/65536/);
  });
});
