/**
 * Forking a running machine (POST /vms/{id}/clone): the clones go on from the source's state
 * (the writer guest answers commands at once, with no new boot) and see the source's disk as
 * it was, each on its own copy-on-write layer: what a clone writes, neither the source nor the
 * other clone sees. The source runs on. A machine whose disk is written in place is refused.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { attach, curl, scratch, startDaemon, writerElf, type Daemon } from './support.ts';

describe('daemon: clones of a running machine', () => {
  const s = scratch();
  let d: Daemon;
  before(async () => {
    writeFileSync(s.path('base.img'), Buffer.alloc(1 << 20));
    d = await startDaemon(s.path('state'));
  });
  after(async () => {
    await d?.stop();
    s.cleanup();
  });

  it('makes running copies that go on from the source, each with its own disk layer', async () => {
    const spec = { memory: 16 << 20, boot: { mode: 'bare', kernel: writerElf() }, devices: { disks: [{ file: s.path('base.img'), format: 'raw', overlay: s.path('src.qcow2') }] } };
    assert.equal(curl(d.sock, 'POST', '/vms', { name: 'src', spec, start: true }).status, 201);
    const src = await attach(d.sock, 'src');
    await src.waitFor(/writer ready/);
    src.send('W src 3\n');
    await src.waitFor(/done src/);

    const t = performance.now();
    const c = curl(d.sock, 'POST', '/vms/src/clone', { count: 2 });
    const ms = performance.now() - t;
    assert.equal(c.status, 201, c.text);
    assert.deepEqual(c.body.machines.map((m: { name: string; state: string }) => `${m.name}:${m.state}`), ['src-clone-1:running', 'src-clone-2:running']);
    process.stderr.write(`clone: 2 clones in ${ms.toFixed(0)} ms\n`);
    assert.equal(curl(d.sock, 'GET', '/vms/src').body.state, 'running', 'the source runs on');

    const [c1, c2] = await Promise.all(['src-clone-1', 'src-clone-2'].map((n) => attach(d.sock, n)));
    // The clones were not booted: they wait for a command where the source was.
    c1!.send('R 2\n');
    await c1!.waitFor(/sector 2: src sector 2/);
    assert.doesNotMatch(c1!.text(), /writer ready/);
    c1!.send('W one 1\n');
    await c1!.waitFor(/done one/);
    c2!.send('R 1\n');
    await c2!.waitFor(/sector 1: src sector 1/);
    c2!.send('W two 2\n');
    await c2!.waitFor(/done two/);
    src.send('R 1\n');
    await src.waitFor(/sector 1: src sector 1/);
    c1!.send('R 2\n');
    await c1!.waitFor(/sector 2: src sector 2[^]*sector 2: src sector 2/);
    c2!.send('R 1\n');
    await c2!.waitFor(/sector 1: two sector 1/);
    for (const x of [src, c1!, c2!]) x.close();

    // A disk written in place cannot be cloned (and base.img, under the overlays, is locked against writers).
    writeFileSync(s.path('plain.img'), Buffer.alloc(1 << 20));
    const plain = curl(d.sock, 'POST', '/vms', { name: 'plain', spec: { ...spec, devices: { disks: [{ file: s.path('plain.img'), format: 'raw' }] } }, start: true });
    assert.equal(plain.status, 201, plain.text);
    const refused = curl(d.sock, 'POST', '/vms/plain/clone', {});
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'NO_CLONE');
  });
});
