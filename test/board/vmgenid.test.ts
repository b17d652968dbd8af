/**
 * The generation ID (Linux's `vmgenid` driver on the microsoft,vmgenid device-tree node):
 * Debian's kernel binds the device, a machine restored from a snapshot is a new generation
 * (QMP query-vm-generation-id answers another GUID) and its kernel is told (the device's
 * interrupt arrives once, so it reseeds its random numbers), while the shell goes on from
 * where it was saved.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Guest } from '../support/guest.ts';
import { QmpClient } from '../support/qmp.ts';

const dir = mkdtempSync(join(tmpdir(), 'virtus-vmgenid-'));
after(() => {
  Guest.killAll();
  rmSync(dir, { recursive: true, force: true });
});

/** The count on the vmgenid line of /proc/interrupts. */
function vmgenidInterrupts(text: string): number {
  const line = text.split('\n').find((l) => /\bvmgenid\s*$/.test(l));
  assert.ok(line, `/proc/interrupts has a vmgenid line:\n${text}`);
  return Number(/^\s*\d+:\s+(\d+)/.exec(line)![1]);
}

async function generation(qmp: QmpClient): Promise<string> {
  const r = await qmp.execute('query-vm-generation-id');
  const guid = (r.return as { guid?: string } | undefined)?.guid;
  assert.match(guid ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, JSON.stringify(r));
  return guid!;
}

test('a restored machine is a new generation, and its kernel hears of it', { timeout: 20 * 60_000 }, async () => {
  const snap = join(dir, 'm.snap');
  const a = Guest.virtus(['--qmp', `unix:${join(dir, 'a.qmp')},server=on,wait=off`, '--snapshot-on-exit', snap]);
  await a.shell();
  assert.match(await a.run('ls /sys/bus/platform/drivers/vmgenid/'), /\b102000\.vmgenid\b/, 'the kernel bound the device');
  assert.equal(vmgenidInterrupts(await a.run('cat /proc/interrupts')), 0);
  await a.run('echo before > /tmp/mark');
  const qa = await QmpClient.connect(join(dir, 'a.qmp'));
  await qa.execute('qmp_capabilities');
  const first = await generation(qa);
  assert.equal(await generation(qa), first, 'the same while the machine runs');
  await qa.execute('quit');
  assert.equal(await a.exited(), 0);
  assert.ok(existsSync(snap), a.stderr);

  const b = Guest.virtus(['--restore', snap, '--qmp', `unix:${join(dir, 'b.qmp')},server=on,wait=off`]);
  const qb = await QmpClient.connect(join(dir, 'b.qmp'));
  await qb.execute('qmp_capabilities');
  const second = await generation(qb);
  assert.notEqual(second, first);
  assert.equal(await b.run('cat /tmp/mark'), 'before\n', 'the shell goes on from the snapshot');
  assert.equal(vmgenidInterrupts(await b.run('cat /proc/interrupts')), 1, 'the kernel was told once');
  await qb.execute('quit');
  await b.exited();
});
