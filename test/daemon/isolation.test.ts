/**
 * One machine per worker thread: a guest that spins without end, and a machine whose thread
 * dies of an uncaught error (fault injected with VIRTUS_WORKER_FAULT, as a monitor bug would
 * throw), disturb neither a third machine's console nor the API. The dead machine is reported
 * stopped with the reason; the spinning one shows its CPU use; an idle one shows almost none.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { attach, curl, scratch, startDaemon, until, writerElf, type Daemon } from './support.ts';

describe('daemon: machines are isolated in their threads', () => {
  const s = scratch();
  let d: Daemon;
  before(async () => {
    writeFileSync(s.path('base.img'), Buffer.alloc(1 << 20));
    d = await startDaemon(s.path('state'), { env: { VIRTUS_WORKER_FAULT: 'dies' } });
  });
  after(async () => {
    await d?.stop();
    s.cleanup();
  });

  it('a spinning guest and a dead thread leave the third machine and the API alone', async () => {
    const elf = writerElf();
    const make = (name: string) => {
      const r = curl(d.sock, 'POST', '/vms', { name, spec: { memory: 16 << 20, boot: { mode: 'bare', kernel: elf }, devices: { disks: [{ file: s.path('base.img'), format: 'raw', overlay: s.path(`${name}.qcow2`) }] } }, start: true });
      assert.equal(r.status, 201, r.text);
    };
    make('third');
    const third = await attach(d.sock, 'third');
    await third.waitFor(/writer ready/);
    make('spin');
    const spin = await attach(d.sock, 'spin');
    await spin.waitFor(/writer ready/);
    spin.send('S\n');
    await spin.waitFor(/spinning/);
    make('dies');

    const dead = await until('the faulty thread to die', () => {
      const m = curl(d.sock, 'GET', '/vms/dies').body;
      return m.state === 'stopped' && m;
    });
    assert.equal(dead.stop.reason, 'error');
    assert.match(dead.stop.message, /worker thread died: .*injected fault/);

    // The third machine answers at once, many times over, while the spinner spins.
    for (let i = 1; i <= 20; i++) {
      const t = performance.now();
      third.send(`W t${i} 2\n`);
      await third.waitFor(new RegExp(`done t${i}`), 10_000);
      assert.ok(performance.now() - t < 5000, `round ${i} answered in ${(performance.now() - t).toFixed(0)} ms`);
    }
    third.send('R 2\n');
    await third.waitFor(/sector 2: t20 sector 2/);
    // Let the daemon sample the threads' busy shares (every 2 s).
    await new Promise((r) => setTimeout(r, 4500));
    const t = performance.now();
    const list = curl(d.sock, 'GET', '/vms').body.machines as Array<{ name: string; state: string; cpuPercent: number }>;
    assert.ok(performance.now() - t < 2000, 'the API answers while a guest spins');
    const by = Object.fromEntries(list.map((m) => [m.name, m]));
    assert.equal(by.spin!.state, 'running');
    assert.equal(by.third!.state, 'running');
    assert.ok(by.spin!.cpuPercent > 50, `the spinning guest's thread is busy (${by.spin!.cpuPercent}%)`);
    assert.ok(by.third!.cpuPercent < 5, `the idle guest (in WFI) costs almost nothing (${by.third!.cpuPercent}%)`);
    third.close();
    spin.close();
  });
});
