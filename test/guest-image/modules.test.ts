/**
 * Choosing the guest's kernel modules, on the real modules of the fetched linux-modules
 * package, against kmod's modinfo; and reading busybox's applets, against busybox itself
 * (run with qemu-user).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { busyboxApplets } from '../../src/host/node/guest/busybox.ts';
import type { Role } from '../../src/host/node/guest/build.ts';
import { cacheRoot, type DefaultGuest } from '../../src/host/node/guest/index.ts';
import { moduleDepends, modinfoField, parseModinfo } from '../../src/host/node/guest/modinfo.ts';
import { loadOrder, readModuleFile, selectModules, type ModuleSelection } from '../../src/host/node/guest/modules.ts';
import { isVirtusError } from '../../src/util/errors.ts';
import { defaultGuest, requireTool } from './support.ts';

let guest: DefaultGuest;
let scratch: string;
let moduleDir: string;
let sel: ModuleSelection;

/** Unpacks the guest's cached packages for `roles` into one scratch directory. */
function unpack(...roles: Role[]): string {
  const dest = join(scratch, roles[0]!);
  for (const role of roles) {
    const deb = join(cacheRoot(), 'debs', guest.manifest.packages[role].file);
    const r = spawnSync('dpkg-deb', ['-x', deb, dest], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
  return dest;
}

before(async () => {
  guest = await defaultGuest();
  scratch = mkdtempSync(join(tmpdir(), 'virtus-modules-'));
  moduleDir = join(unpack('modules', 'base'), 'usr/lib/modules', guest.release);
  sel = await selectModules(moduleDir, guest.release);
});

after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function modinfo(field: string, file: string): string {
  requireTool('modinfo');
  const r = spawnSync('modinfo', ['-F', field, file], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test('guest modules: ext4 and 9p pull in their dependencies', () => {
  const byName = new Map(sel.modules.map((m) => [m.name, m]));
  assert.deepEqual([...byName.get('ext4')!.depends].sort(), ['crc16', 'jbd2', 'mbcache']);
  for (const d of ['jbd2', 'mbcache', 'crc16', '9pnet', 'netfs', 'net_failover', 'failover']) assert.ok(byName.has(d), `${d} is selected`);
  assert.deepEqual(sel.modules.map((m) => m.name), guest.manifest.modules, 'the built guest carries the same selection');
  assert.ok(sel.builtin.includes('virtio_console'), 'Debian builds virtio_console in');
});

test('guest modules: each follows its dependencies', () => {
  const seen = new Set<string>();
  for (const m of sel.modules) {
    for (const d of m.depends) assert.ok(seen.has(d), `${m.name} comes after ${d}`);
    seen.add(m.name);
  }
});

test("guest modules: our .modinfo reader agrees with kmod's modinfo", async () => {
  for (const m of sel.modules) {
    const file = join(moduleDir, m.source);
    assert.equal(m.depends.join(','), modinfo('depends', file), `${m.name}: depends`);
    assert.equal(modinfoField(m.info, 'name'), modinfo('name', file));
    assert.equal(modinfoField(m.info, 'vermagic'), modinfo('vermagic', file));
    assert.equal((m.info.get('alias') ?? []).join('\n'), modinfo('alias', file), `${m.name}: alias`);
  }
  // A module outside the selection, with a dash in its file name.
  const rng = join(moduleDir, 'kernel/drivers/char/hw_random/virtio-rng.ko.xz');
  const info = parseModinfo(await readModuleFile(rng), rng);
  assert.equal(modinfoField(info, 'name'), 'virtio_rng');
  assert.equal(moduleDepends(info).join(','), modinfo('depends', rng));
});

test('guest modules: load order and bad input', () => {
  const deps: Record<string, string[]> = { a: ['b', 'c'], b: ['c'], c: [], d: [] };
  assert.deepEqual(loadOrder(['d', 'a'], (n) => deps[n]!), ['d', 'c', 'b', 'a']);
  const cyclic: Record<string, string[]> = { a: ['b'], b: ['a'] };
  assert.throws(() => loadOrder(['a'], (n) => cyclic[n]!), (e) => isVirtusError(e, 'MODULE_CYCLE'));
  assert.throws(() => parseModinfo(new Uint8Array(100)), (e) => isVirtusError(e, 'MODULE_NOT_ELF'));
  const truncated = new Uint8Array(sel.modules[0]!.data.subarray(0, 4096));
  assert.throws(() => parseModinfo(truncated), (e) => isVirtusError(e));
});

test('guest busybox: the applet table read from the binary is what busybox --list says', () => {
  requireTool('qemu-riscv64');
  const bin = join(unpack('busybox'), 'usr/bin/busybox');
  const ours = busyboxApplets(new Uint8Array(readFileSync(bin)));
  const r = spawnSync('qemu-riscv64', [bin, '--list'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(ours, r.stdout.trim().split('\n'));
});
