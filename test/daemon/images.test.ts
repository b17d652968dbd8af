/**
 * Many machines from one image of the store: each gets its own copy-on-write overlay of the
 * image's disk, sees its own writes there, and the store's copy stays as it was. First with a
 * bare-metal writer image (five machines), then with the default guest: two Linux machines boot
 * to a shell, each writes a file and syncs; stopped gracefully (SysRq over hvc0) each powers
 * itself off with a clean file system, and debugfs finds each one's file on its own overlay.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { ensureDefaultGuest } from '../../src/host/node/guest/fetch.ts';
import { packMachine } from '../../src/repo/pack.ts';
import { silentProgress } from '../../src/repo/progress.ts';
import { ImageStore } from '../../src/repo/store.ts';
import { PROMPT } from '../support/guest.ts';
import { requireTool } from '../support/toolchain.ts';
import { attach, curl, readSector, scratch, startDaemon, until, writerElf } from './support.ts';

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('daemon: machines from one image', () => {
  const s = scratch();
  after(() => s.cleanup());

  it('five bare-metal machines, each writing its own overlay; the store keeps its copy', async () => {
    requireTool('qemu-io');
    const disk = Buffer.alloc(1 << 20);
    disk.write('BASE OF THE IMAGE');
    writeFileSync(s.path('disk.img'), disk);
    const store = ImageStore.open(s.path('store'));
    const packed = await packMachine(store, { kernel: writerElf(), disk: s.path('disk.img'), memory: 16 << 20, compression: 'none' }, silentProgress);
    await store.tag({ name: 'writer', tag: '1' }, packed.digest);
    packed.hold.release();
    const d = await startDaemon(s.path('state'), { env: { VIRTUS_IMAGE_STORE: store.root } });
    try {
      const r = curl(d.sock, 'POST', '/vms', { image: 'writer:1', count: 5, boot: 'bare', name: 'w', start: true });
      assert.equal(r.status, 201, r.text);
      const machines = r.body.machines as Array<{ id: string; name: string; image: string; spec: { devices: { disks: Array<{ file: string; overlay: string }> } } }>;
      assert.deepEqual(machines.map((m) => m.name), ['w-1', 'w-2', 'w-3', 'w-4', 'w-5']);
      const base = machines[0]!.spec.devices.disks[0]!.file;
      const before = sha(base);
      assert.equal(new Set(machines.map((m) => m.spec.devices.disks[0]!.overlay)).size, 5, 'an overlay each');
      const consoles = await Promise.all(machines.map((m) => attach(d.sock, m.name)));
      await Promise.all(consoles.map((c) => c.waitFor(/writer ready/)));
      consoles.forEach((c, i) => c.send(`W w-${i + 1} 3\n`));
      await Promise.all(consoles.map((c, i) => c.waitFor(new RegExp(`done w-${i + 1}`))));
      for (const c of consoles) c.close();
      for (const m of machines) assert.equal(curl(d.sock, 'POST', `/vms/${m.name}/stop`).body.state, 'stopped');
      machines.forEach((m, i) => {
        const overlay = m.spec.devices.disks[0]!.overlay;
        for (let k = 1; k <= 3; k++) assert.equal(readSector(overlay, k), `w-${i + 1} sector ${k}`, `${m.name} sees its own write`);
        assert.equal(readSector(overlay, 0), 'BASE OF THE IMAGE', 'and the image beneath');
      });
      assert.equal(sha(base), before, "the store's copy of the disk is unchanged");
      const listed = curl(d.sock, 'GET', '/vms').body.machines as Array<{ image: string }>;
      assert.ok(listed.every((m) => m.image === 'writer:1'));
      for (const m of machines) assert.equal(curl(d.sock, 'DELETE', `/vms/${m.name}`).status, 204);
      for (const m of machines) assert.equal(existsSync(m.spec.devices.disks[0]!.overlay), false, 'deleting a machine deletes its overlay');
    } finally {
      await d.stop();
    }
  });

  it("reads its own copy of an image's kernel again to reboot and to snapshot, and refuses one changed meanwhile", async () => {
    const store = ImageStore.open(s.path('store2'));
    writeFileSync(s.path('disk2.img'), Buffer.alloc(1 << 20));
    const packed = await packMachine(store, { kernel: writerElf(), disk: s.path('disk2.img'), memory: 16 << 20, compression: 'none' }, silentProgress);
    await store.tag({ name: 'writer', tag: '2' }, packed.digest);
    packed.hold.release();
    const d = await startDaemon(s.path('state2'), { env: { VIRTUS_IMAGE_STORE: store.root } });
    try {
      const r = curl(d.sock, 'POST', '/vms', { image: 'writer:2', boot: 'bare', name: 'again', start: true });
      assert.equal(r.status, 201, r.text);
      const kernel = (r.body.machines as Array<{ spec: { boot: { kernel: string } } }>)[0]!.spec.boot.kernel;
      assert.ok(kernel.startsWith(s.path('state2')), `the daemon keeps the image's kernel in its state directory: ${kernel}`);
      const con = await attach(d.sock, 'again');
      await con.waitFor(/writer ready/);
      assert.equal(curl(d.sock, 'POST', '/vms/again/reset').status, 200);
      await con.waitFor(/writer ready[^]*writer ready/);
      const snap = curl(d.sock, 'POST', '/vms/again/snapshot', { name: 'again-snap' });
      assert.equal(snap.status, 201, snap.text);
      // The kernel the machine booted from is rewritten: a reboot can no longer load it.
      const bytes = readFileSync(kernel);
      bytes[bytes.length - 1] ^= 0xff;
      writeFileSync(kernel, bytes);
      const refused = curl(d.sock, 'POST', '/vms/again/reset');
      assert.equal(refused.body.error?.code, 'BOOT_FILE_CHANGED', refused.text);
      assert.match(refused.body.error.message, /is not the file the machine booted from/);
      assert.equal(curl(d.sock, 'GET', '/vms/again').status, 200, 'the daemon goes on');
      // The snapshot carries the images it was made with: a machine made of it runs (on the
      // same overlay, so the first one stops).
      con.close();
      assert.equal(curl(d.sock, 'POST', '/vms/again/stop', { timeout: 0 }).body.state, 'stopped');
      const back = curl(d.sock, 'POST', '/vms', { name: 'from-snap', snapshot: 'again-snap', start: true });
      assert.equal(back.status, 201, back.text);
      const con2 = await attach(d.sock, 'from-snap');
      con2.send('W back 1\n');
      await con2.waitFor(/done back/);
      con2.close();
      for (const n of ['again', 'from-snap']) assert.equal(curl(d.sock, 'DELETE', `/vms/${n}?force=true`).status, 204);
    } finally {
      await d.stop();
    }
  });

  it('two default guests boot from the image to a shell and keep their own files', { timeout: 900_000 }, async () => {
    requireTool('debugfs');
    requireTool('e2fsck');
    await ensureDefaultGuest({ progress: () => {} });
    const d = await startDaemon(s.path('state-linux'));
    try {
      // The root disk named on the command line: images packed before their config said so do not.
      const r = curl(d.sock, 'POST', '/vms', { image: 'default', count: 2, name: 'linux', memory: 256 << 20, append: 'console=ttyS0 root=/dev/vda', console: 'virtio', start: true });
      assert.equal(r.status, 201, r.text);
      const machines = r.body.machines as Array<{ name: string; spec: { devices: { disks: Array<{ file: string; overlay: string }> } } }>;
      const base = machines[0]!.spec.devices.disks[0]!.file;
      const before = sha(base);
      const consoles = await Promise.all(machines.map((m) => attach(d.sock, m.name)));
      try {
        await Promise.all(consoles.map((c) => c.waitFor(/virtus-init: ready, root is \/dev\/vda/, 400_000)));
        await Promise.all(consoles.map((c) => c.waitFor(new RegExp(PROMPT), 300_000)));
        machines.forEach((m, i) => consoles[i]!.send(`echo hello-${m.name} > /root/mark && sync && echo written-$((40+2))-${m.name}\n`));
        await Promise.all(machines.map((m, i) => consoles[i]!.waitFor(new RegExp(`written-42-${m.name}`), 120_000)));
      } finally {
        for (const c of consoles) c.close();
      }
      // A graceful stop: the guest syncs, remounts read-only and powers itself off (SysRq on hvc0).
      for (const m of machines) {
        const st = curl(d.sock, 'POST', `/vms/${m.name}/stop`, { timeout: 300 });
        assert.equal(st.body.state, 'stopped', st.text);
        assert.equal(st.body.stop.reason, 'poweroff', `${m.name} powered itself off: ${st.text}`);
      }
      for (const m of machines) {
        assert.equal(spawnSync('qemu-img', ['check', m.spec.devices.disks[0]!.overlay]).status, 0);
        const raw = s.path(`${m.name}.raw`);
        assert.equal(spawnSync('qemu-img', ['convert', '-O', 'raw', m.spec.devices.disks[0]!.overlay, raw]).status, 0);
        const fsck = spawnSync('e2fsck', ['-fn', raw], { encoding: 'utf8' });
        assert.equal(fsck.status, 0, `the file system was left clean: ${fsck.stdout}${fsck.stderr}`);
        const cat = spawnSync('debugfs', ['-R', 'cat /root/mark', raw], { encoding: 'utf8' });
        assert.equal(cat.stdout.trim(), `hello-${m.name}`, `${m.name}'s file is on its own overlay: ${cat.stderr}`);
      }
      await until('the machines to stop', () => (curl(d.sock, 'GET', '/vms').body.machines as Array<{ state: string }>).every((m) => m.state === 'stopped'));
      assert.equal(sha(base), before, "the default guest's disk in the store is unchanged");
    } finally {
      await d.stop();
    }
  });
});
