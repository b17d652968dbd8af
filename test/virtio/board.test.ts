/**
 * virtio on the virt board, through `virtus run`: a bare-metal driver (test/guest/virtio/blk.c)
 * probes the slots, reads, writes, flushes, asks for the ID and submits malformed chains
 * against raw, read-only, qcow2 and overlay drives; the monitor keeps running and reports
 * each broken device. Also: the device tree's virtio nodes against QEMU 7.2's, --stats, and
 * one-line errors for bad --drive, --share, --console and --root values.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decodeFdt } from '../../src/fdt/decode.ts';
import { buildGuest, requireTool, runVirtus } from '../support/toolchain.ts';

const dir = mkdtempSync(join(tmpdir(), 'virtus-virtio-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const MAGIC = 'VIRTUS-DISK-TEST';
const prog = () => buildGuest('virtio-blk', ['common/crt.S', 'virtio/blk.c']);

function disk(name: string, size = 1 << 20): string {
  const p = join(dir, name);
  const b = new Uint8Array(size);
  b.set(new TextEncoder().encode(MAGIC));
  writeFileSync(p, b);
  return p;
}

/** Sector 1 as the program writes it. */
const written = Uint8Array.from({ length: 512 }, (_, i) => (i * 3 + 1) & 0xff);

function assertOneLineError(r: { status: number | null; stderr: string }, pattern: RegExp): void {
  assert.equal(r.status, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^virtus: /);
  assert.match(lines[0]!, pattern);
}

describe('virtio-blk on the virt board (bare-metal driver)', () => {
  it('reads, writes, flushes and identifies a raw drive; malformed chains break the device, not the monitor', () => {
    const img = disk('raw.img');
    const r = runVirtus(['run', '--bios', 'none', '--kernel', prog(), '--drive', `file=${img},serial=test-serial`, '--stats']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^blk_slot=0x0+7$/m, 'the first drive is in the highest slot, as on QEMU');
    assert.match(r.stdout, /^rng_slot=0x0+6$/m);
    assert.match(r.stdout, /^id=test-serial$/m);
    assert.match(r.stdout, /^capacity=0x0+800$/m);
    assert.match(r.stdout, /virtio-blk: ok/);
    assert.deepEqual(new Uint8Array(readFileSync(img)).subarray(512, 1024), written, 'the write reached the image');
    // Each malformed chain is one warning naming the device and the fault.
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('virtus: warning: virtio-blk0:'));
    assert.equal(warnings.length, 9, r.stderr);
    for (const w of ['outside RAM', 'a loop?', 'device-readable descriptor after a device-writable', 'indirect table length 24', 'inside an indirect table', 'head index 200', 'no 16-byte header']) {
      assert.ok(warnings.some((l) => l.includes(w)), `a warning about ${w}`);
    }
    assert.match(r.stderr, /^virtio devices \(paravirtual I\/O\):$/m);
    assert.match(r.stderr, /^ {2}virtio-blk0 read requests +\d+$/m);
    assert.match(r.stderr, /^ {2}virtio-blk0 driver errors +9$/m);
    assert.match(r.stderr, /^ {2}virtio-rng0 bytes served +64$/m);
  });

  it('a read-only drive answers writes with IOERR and keeps its data', () => {
    const img = disk('ro.img');
    const before = readFileSync(img);
    const r = runVirtus(['run', '--bios', 'none', '--kernel', prog(), '--drive', `file=${img},readonly=on`]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^write_status=0x0+1$/m);
    assert.match(r.stdout, /^features=0x[0-9a-f]*[2367abef][0-9a-f]$/m, 'VIRTIO_BLK_F_RO (bit 5) offered');
    assert.deepEqual(readFileSync(img), before);
  });

  it('takes qcow2 images (format detected) and overlay=auto leaves the base untouched', () => {
    requireTool('qemu-img');
    const raw = disk('base.raw');
    const q = join(dir, 'base.qcow2');
    const c = spawnSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, q], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
    const r = runVirtus(['run', '--bios', 'none', '--kernel', prog(), '--drive', `file=${q}`]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const back = join(dir, 'back.raw');
    assert.equal(spawnSync('qemu-img', ['convert', '-O', 'raw', q, back]).status, 0);
    assert.deepEqual(new Uint8Array(readFileSync(back)).subarray(512, 1024), written);
    assert.equal(spawnSync('qemu-img', ['check', q], { encoding: 'utf8' }).status, 0, 'qemu-img check is clean');

    const base = disk('base2.raw');
    const pristine = readFileSync(base);
    const overlaysBefore = readdirSync(tmpdir()).filter((f) => f.startsWith('virtus-overlay-')).length;
    const o = runVirtus(['run', '--bios', 'none', '--kernel', prog(), '--drive', `file=${base},format=raw,overlay=auto`]);
    assert.equal(o.status, 0, o.stdout + o.stderr);
    assert.match(o.stdout, /^write_status=0x0+0$/m);
    assert.deepEqual(readFileSync(base), pristine, 'the base is untouched');
    assert.equal(readdirSync(tmpdir()).filter((f) => f.startsWith('virtus-overlay-')).length, overlaysBefore, 'the temporary overlay is gone');
  });

  it("places the transports' device tree nodes exactly as QEMU 7.2's virt board", () => {
    requireTool('qemu-system-riscv64');
    const ours = join(dir, 'ours.dtb');
    const theirs = join(dir, 'qemu.dtb');
    assert.equal(runVirtus(['run', '--bios', 'none', '--kernel', prog(), '--dtb-dump', ours]).status, 0);
    const q = spawnSync('qemu-system-riscv64', ['-M', `virt,dumpdtb=${theirs}`, '-display', 'none', '-nographic'], { encoding: 'utf8' });
    assert.equal(q.status, 0, q.stderr);
    const a = decodeFdt(readFileSync(ours));
    const b = decodeFdt(readFileSync(theirs));
    const nodes = (t: ReturnType<typeof decodeFdt>) => t.find('/soc')!.children.filter((n) => n.name.startsWith('virtio_mmio@'));
    assert.deepEqual(nodes(a).map((n) => n.name), nodes(b).map((n) => n.name), 'same nodes, same order');
    for (const n of nodes(a)) {
      const m = b.find(`/soc/${n.name}`)!;
      for (const p of ['reg', 'interrupts', 'compatible']) assert.deepEqual(n.getCells(p) ?? n.getStrings(p), m.getCells(p) ?? m.getStrings(p), `${n.name} ${p}`);
      const parent = (t: ReturnType<typeof decodeFdt>, x: typeof n) => t.byPhandle(x.getU32('interrupt-parent')!)?.name;
      assert.equal(parent(a, n), parent(b, m));
    }
  });
});

describe('virtio flags: bad input is one clear line', () => {
  const kernel = () => ['run', '--bios', 'none', '--kernel', prog()];
  it('a drive that cannot be opened', () => {
    assertOneLineError(runVirtus([...kernel(), '--drive', `file=${join(dir, 'missing.img')}`]), /--drive .*missing\.img: cannot open .*no such file/);
  });
  it('a read-only host file without readonly=on', { skip: process.getuid?.() === 0 ? 'root may write any file' : false }, () => {
    const img = disk('locked.img');
    spawnSync('chmod', ['444', img]);
    assertOneLineError(runVirtus([...kernel(), '--drive', `file=${img}`]), /permission denied/);
  });
  it('an unknown drive key, a bad format, a long serial', () => {
    const img = disk('k.img');
    assertOneLineError(runVirtus([...kernel(), '--drive', `file=${img},bogus=1`]), /unknown key 'bogus'/);
    assertOneLineError(runVirtus([...kernel(), '--drive', `file=${img},if=scsi`]), /if=scsi: the virt board's disks are virtio/);
    assertOneLineError(runVirtus([...kernel(), '--drive', `file=${img},format=vmdk`]), /unknown image format 'vmdk'/);
    assertOneLineError(runVirtus([...kernel(), '--drive', `file=${img},serial=${'x'.repeat(21)}`]), /at most 20/);
    assertOneLineError(runVirtus([...kernel(), '--drive', `file=${img},format=qcow2`]), /not a qcow2 image/);
  });
  it('a share that is not a folder, a bad tag; --console and --root values', () => {
    assertOneLineError(runVirtus([...kernel(), '--share', join(dir, 'nope')]), /--share .*nope: no such directory/);
    assertOneLineError(runVirtus([...kernel(), '--share', `${dir},tag=a,,b`]), /tag "a,b"/);
    assertOneLineError(runVirtus([...kernel(), '--share', `${dir},mode=x`]), /unknown key 'mode'/);
    assertOneLineError(runVirtus([...kernel(), '--console', 'hvc']), /--console must be serial or virtio/);
    assertOneLineError(runVirtus([...kernel(), '--root', '/dev/sda']), /--root takes "disk"/);
  });
  it('more devices than slots', () => {
    const img = disk('many.img');
    const drives = Array.from({ length: 8 }, () => ['--drive', `file=${img},readonly=on`]).flat();
    assertOneLineError(runVirtus([...kernel(), ...drives]), /no free virtio slot/);
    assert.equal(existsSync(img), true);
  });
});
