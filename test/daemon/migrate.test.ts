/**
 * Live migration between two daemons on loopback while the guest prints a counter every 2 ms
 * (test/guest/snapshot/counter.c rewriting a 2 MiB buffer): out through the API (prepare on
 * the target with POST /vms/incoming, perform on the source with POST /vms/{id}/migrate), and
 * back again with `virtus migrate`. The consoles of the three machines together hold every
 * counter exactly once, in order, and the guest's checksum holds at the end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { buildGuest, VIRTUS } from '../support/toolchain.ts';
import { attach, curl, scratch, startDaemon, subscribe, until, type Daemon } from './support.ts';

const COUNT = 15000;

describe('daemon: live migration between two daemons', () => {
  const s = scratch();
  let a: Daemon;
  let b: Daemon;
  before(async () => {
    [a, b] = await Promise.all([startDaemon(s.path('a')), startDaemon(s.path('b'))]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    s.cleanup();
  });

  it('moves a running guest out through the API and back with virtus migrate; no line lost or repeated', async () => {
    const elf = buildGuest(`daemon-counter-${COUNT}`, ['common/crt.S', 'snapshot/counter.c'], { cflags: [`-DCOUNT=${COUNT}`, '-DWORDS=(1u<<18)'] });
    const c = curl(a.sock, 'POST', '/vms', { name: 'count', spec: { memory: 32 << 20, boot: { mode: 'bare', kernel: elf } }, start: true });
    assert.equal(c.status, 201, c.text);
    const con = await attach(a.sock, 'count');
    await con.waitFor(/^counter 200$/m);

    const inc = curl(b.sock, 'POST', '/vms/incoming', { name: 'count' });
    assert.equal(inc.status, 201, inc.text);
    assert.equal(inc.body.machine.state, 'incoming');
    assert.match(inc.body.uri, /^tcp:127\.0\.0\.1:\d+$/);
    // QEMU's settings go through the same actions as QMP's, checked as QEMU checks them.
    const bad = curl(a.sock, 'POST', '/vms/count/migrate', { to: inc.body.uri, parameters: { 'downtime-limit': 3_000_000 } });
    assert.equal(bad.status, 400, bad.text);
    assert.deepEqual(bad.body.error, { code: 'MIGRATE_PARAMETER', message: "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms" });
    const refused = curl(a.sock, 'POST', '/vms/count/migrate', { to: inc.body.uri, capabilities: { 'postcopy-ram': true, compress: true } });
    assert.equal(refused.status, 400, refused.text);
    assert.equal(refused.body.error.message, 'Postcopy is not currently compatible with compression');
    assert.equal(curl(a.sock, 'GET', '/vms/count').body.state, 'running');
    // The source's event stream, to count how often the migration's end is told.
    const log = subscribe(a.sock);
    await log.ready;
    const statuses = (): string[] => log.events.filter((e) => e.data.name === 'count' && (e.type === 'migration' || e.type === 'state'))
      .map((e) => (e.type === 'state' ? `state:${e.data.state}` : (e.data.info as { status: string }).status));
    const mig = curl(a.sock, 'POST', '/vms/count/migrate', { to: inc.body.uri, parameters: { 'downtime-limit': 200, 'cpu-throttle-initial': 30 } });
    assert.equal(mig.status, 202, mig.text);
    const gone = await until('the source to stop', () => {
      const m = curl(a.sock, 'GET', '/vms/count').body;
      return m.state === 'stopped' && m;
    }, 180_000);
    assert.equal(gone.stop.reason, 'migrated');
    await until('the stopped state on the event stream', () => statuses().includes('state:stopped'), 10_000);
    log.close();
    assert.deepEqual(statuses().filter((x) => x === 'completed'), ['completed'], `the end is told once: ${statuses().join(' ')}`);
    assert.equal(gone.migration.status, 'completed');
    assert.ok(gone.migration.downtimeMs >= 0 && gone.migration.rounds >= 1);
    const there = await until('the target to run', () => {
      const m = curl(b.sock, 'GET', '/vms/count').body;
      return m.state === 'running' && m;
    }, 60_000);
    assert.equal(there.spec.memory, 32 << 20);
    // The boot images came in the stream; the target keeps them, so a later start boots the machine.
    assert.ok(there.spec.boot.kernel.startsWith(b.state), there.spec.boot.kernel);
    assert.ok(readFileSync(there.spec.boot.kernel).equals(readFileSync(elf)), 'the kernel arrived whole');
    const conB = await attach(b.sock, 'count');
    await conB.waitFor(/^counter \d*[1-9]\d*$/m);

    // And back, with the CLI, while it still counts.
    const back = spawnSync(process.execPath, [VIRTUS, 'migrate', 'count', '--host', `unix:${b.sock}`, '--to', `unix:${a.sock}`], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(back.status, 0, back.stderr);
    assert.match(back.stdout, /^count -> unix:.* as incoming-1: [\d.]+ ms, downtime [\d.]+ ms, \d+ rounds, \d+ bytes$/m);
    const conA = await attach(a.sock, 'incoming-1');
    await conA.waitFor(/^checksum ok/m, 120_000);
    con.close();
    conB.close();
    conA.close();
    const all = [a, b, a].map((d, i) => curl(d.sock, 'GET', `/vms/${['count', 'count', 'incoming-1'][i]}/logs`).text).join('');
    const seen = [...all.matchAll(/^counter (\d+)$/gm)].map((m) => Number(m[1]));
    assert.equal(seen.length, COUNT, 'no counter lost or repeated');
    seen.forEach((n, i) => assert.equal(n, i, `counter ${i} in its place`));
    assert.equal(curl(b.sock, 'GET', '/vms/count').body.stop.reason, 'migrated');
    // A machine that left does not start again where it was: its disks are the target's.
    const again = curl(a.sock, 'POST', '/vms/count/start');
    assert.equal(again.status, 409);
    assert.match(again.body.error.message, /migrated to tcp:127\.0\.0\.1:\d+/);
  });

  it('cancels a migration through the API: the guest runs on here, and nothing runs on the target', async () => {
    const elf = buildGuest(`daemon-counter-${COUNT * 100}`, ['common/crt.S', 'snapshot/counter.c'], { cflags: [`-DCOUNT=${COUNT * 100}`, '-DWORDS=(1u<<18)'] });
    const c = curl(a.sock, 'POST', '/vms', { name: 'stay', spec: { memory: 32 << 20, boot: { mode: 'bare', kernel: elf } }, start: true });
    assert.equal(c.status, 201, c.text);
    const con = await attach(a.sock, 'stay');
    await con.waitFor(/^counter 200$/m);
    const inc = curl(b.sock, 'POST', '/vms/incoming', { name: 'stay' });
    assert.equal(inc.status, 201, inc.text);
    const log = subscribe(a.sock);
    await log.ready;
    // 1 MiB/s: the first round alone takes seconds.
    const mig = curl(a.sock, 'POST', '/vms/stay/migrate', { to: inc.body.uri, parameters: { 'max-bandwidth': 1 << 20 } });
    assert.equal(mig.status, 202, mig.text);
    const cancel = curl(a.sock, 'POST', '/vms/stay/migrate/cancel');
    assert.equal(cancel.status, 200, cancel.text);
    await until('the cancelled event', () => log.events.some((e) => e.type === 'migration' && e.data.name === 'stay' && (e.data.info as { status: string }).status === 'cancelled'), 30_000);
    log.close();
    const here = curl(a.sock, 'GET', '/vms/stay').body;
    assert.equal(here.state, 'running');
    assert.equal(here.migration.status, 'cancelled');
    // The guest goes on counting here.
    const last = Math.max(...[...curl(a.sock, 'GET', '/vms/stay/logs').text.matchAll(/^counter (\d+)$/gm)].map((m) => Number(m[1])));
    await con.waitFor(new RegExp(`^counter ${last + 100}$`, 'm'));
    con.close();
    assert.notEqual(curl(b.sock, 'GET', '/vms/stay').body.state, 'running');
    assert.equal(curl(a.sock, 'POST', '/vms/nosuch/migrate/cancel').status, 404);
  });
});
