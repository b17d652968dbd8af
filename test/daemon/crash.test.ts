/**
 * `kill -9` of the daemon while a guest writes and syncs (test/guest/daemon/writer.c: each
 * sector written, flushed, then "synced K" printed): every write the console had acknowledged
 * is on the machine's overlay afterwards and `qemu-img check` finds the image clean; started
 * again on the same state directory, the daemon brings back the machine whose restart policy
 * is `always` and leaves the one whose policy is `no`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { requireTool } from '../support/toolchain.ts';
import { attach, curl, scratch, startDaemon, until, writerElf, type Daemon } from './support.ts';

describe('daemon: kill -9 loses no acknowledged write', () => {
  const s = scratch();
  let d: Daemon | null = null;
  before(() => {
    requireTool('qemu-img');
    writeFileSync(s.path('base.img'), Buffer.alloc(4 << 20));
  });
  after(async () => {
    await d?.stop();
    s.cleanup();
  });

  it('keeps every synced sector, a clean image, and restarts the restart:always machine', async () => {
    const elf = writerElf();
    const state = s.path('state');
    d = await startDaemon(state);
    const spec = (overlay: string) => ({ memory: 16 << 20, boot: { mode: 'bare', kernel: elf }, devices: { disks: [{ file: s.path('base.img'), format: 'raw', overlay }] } });
    assert.equal(curl(d.sock, 'POST', '/vms', { name: 'always', restart: 'always', spec: spec(s.path('always.qcow2')), start: true }).status, 201);
    assert.equal(curl(d.sock, 'POST', '/vms', { name: 'never', restart: 'no', spec: spec(s.path('never.qcow2')), start: true }).status, 201);
    const con = await attach(d.sock, 'always');
    await con.waitFor(/writer ready/);
    con.send('W crash 0\n');
    await con.waitFor(/^synced crash 300$/m);
    await d.kill9();
    const acknowledged = Math.max(...[...con.text().matchAll(/^synced crash (\d+)$/gm)].map((m) => Number(m[1])));
    con.close();
    assert.ok(acknowledged >= 300);

    const check = spawnSync('qemu-img', ['check', s.path('always.qcow2')], { encoding: 'utf8' });
    assert.equal(check.status, 0, `qemu-img check: ${check.stdout}${check.stderr}`);
    assert.match(check.stdout, /No errors were found on the image/);
    const raw = s.path('always.raw');
    assert.equal(spawnSync('qemu-img', ['convert', '-O', 'raw', s.path('always.qcow2'), raw]).status, 0);
    const disk = readFileSync(raw);
    for (let k = 1; k <= acknowledged; k++) {
      const text = disk.subarray(k * 512, k * 512 + 40).toString('latin1').replace(/\0.*$/s, '');
      assert.equal(text, `crash sector ${k}`, `sector ${k} was acknowledged, so it is on the disk`);
    }
    assert.ok(readFileSync(s.path('base.img')).equals(Buffer.alloc(4 << 20)), 'the base image was never written');

    d = await startDaemon(state);
    const back = await until('the restart:always machine to run again', () => {
      const m = curl(d!.sock, 'GET', '/vms/always').body;
      return m.state === 'running' && m;
    });
    assert.equal(back.restart, 'always');
    const con2 = await attach(d.sock, 'always');
    await con2.waitFor(/writer ready/);
    con2.send(`R ${acknowledged}\n`);
    await con2.waitFor(new RegExp(`sector ${acknowledged}: crash sector ${acknowledged}`));
    con2.close();
    assert.equal(curl(d.sock, 'GET', '/vms/never').body.state, 'stopped', 'restart:no stays down');
  });
});
