/**
 * The daemon process itself: it keeps making machines after the bundle it was started from is
 * gone (bin/virtus.mjs replaces the CLI's bundle when a source changes, and each worker loads
 * the program anew), and SIGTERM ends it while consoles and event streams are attached.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { ROOT, VIRTUS } from '../support/toolchain.ts';
import { attach, curl, scratch, startDaemon, writerElf } from './support.ts';

describe('daemon: the process', () => {
  const s = scratch();
  after(() => s.cleanup());
  writeFileSync(s.path('base.img'), Buffer.alloc(1 << 20));
  const spec = (name: string) => ({ name, spec: { memory: 16 << 20, boot: { mode: 'bare', kernel: writerElf() }, devices: { disks: [{ file: s.path('base.img'), format: 'raw', overlay: s.path(`${name}.qcow2`) }] } }, start: true });

  it('starts machines after the bundle it runs from is gone', async () => {
    // The daemon runs from a private copy of the CLI's bundle, deleted under it as bin/virtus.mjs
    // deletes a bundle it replaced (without touching the bundle other tests run from).
    assert.equal(spawnSync(process.execPath, [VIRTUS, '--version']).status, 0);
    const bundle = readdirSync(join(ROOT, 'build/cli')).find((f) => /^virtus-[0-9a-f]+\.mjs$/.test(f));
    assert.ok(bundle, 'bin/virtus.mjs made its bundle');
    const mine = join(ROOT, 'build/cli', `test-${process.pid}.mjs`);
    copyFileSync(join(ROOT, 'build/cli', bundle), mine);
    const state = s.path('a');
    const sock = join(state, 'daemon.sock');
    const child = spawn(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(pathToFileURL(mine).href)}); process.exitCode = await m.main(['daemon', '--state-dir', ${JSON.stringify(state)}]);`], { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise((r) => child.on('exit', r));
    try {
      let log = '';
      await new Promise<void>((resolve, reject) => {
        child.stderr!.on('data', (b: Buffer) => {
          log += b.toString();
          if (log.includes('listening on')) resolve();
        });
        void exited.then(() => reject(new Error(log)));
      });
      assert.equal(curl(sock, 'POST', '/vms', spec('before')).status, 201);
      rmSync(mine);
      const r = curl(sock, 'POST', '/vms', spec('after'));
      assert.equal(r.status, 201, r.text);
      const con = await attach(sock, 'after');
      await con.waitFor(/writer ready/);
      con.close();
    } finally {
      rmSync(mine, { force: true });
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('ends on SIGTERM with a console and an event stream attached', async () => {
    const d = await startDaemon(s.path('b'));
    assert.equal(curl(d.sock, 'POST', '/vms', spec('attached')).status, 201);
    const con = await attach(d.sock, 'attached');
    await con.waitFor(/writer ready/);
    const events = request({ socketPath: d.sock, path: '/events' });
    events.on('response', (res) => res.resume());
    events.on('error', () => {});
    events.end();
    await new Promise((r) => setTimeout(r, 300));
    const code = await Promise.race([d.stop(), new Promise<string>((r) => setTimeout(() => r('still running after 15 s'), 15_000))]);
    if (code === 'still running after 15 s') await d.kill9();
    assert.equal(code, 0);
    con.close();
  });
});
