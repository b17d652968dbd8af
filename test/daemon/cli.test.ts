/**
 * The CLI as the daemon's client: `virtus create` (from the machine flags of `virtus run`),
 * `ps`, `logs`, `pause`, `resume`, `stop`, `start`, `snapshot`, `rm`; `--host` and
 * `VIRTUS_HOST` pick the daemon; a daemon that is not there is one line. And the restart
 * policy `on-failure` restarts a guest that fails, with growing delays, until it is stopped.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { requireTool as needTool } from '../repo/support.ts';
import { buildGuest, VIRTUS } from '../support/toolchain.ts';
import { attach, curl, scratch, startDaemon, until, writerElf, type Daemon } from './support.ts';

describe('daemon: the CLI as a client', () => {
  const s = scratch();
  let d: Daemon;
  const cli = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [VIRTUS, ...args], { encoding: 'utf8', env: { ...process.env, VIRTUS_HOST: `unix:${d.sock}`, ...env }, timeout: 60_000 });
  before(async () => {
    writeFileSync(s.path('base.img'), Buffer.alloc(1 << 20));
    d = await startDaemon(s.path('state'));
  });
  after(async () => {
    await d?.stop();
    s.cleanup();
  });

  it('creates from machine flags, lists, shows logs, pauses, stops, snapshots and removes', async () => {
    const c = cli(['create', '--name', 'cli', '--bios', 'none', '--kernel', writerElf(), '-m', '16M', '--drive', `file=${s.path('base.img')},format=raw,overlay=${s.path('cli.qcow2')}`, '--start']);
    assert.equal(c.status, 0, c.stderr);
    assert.match(c.stdout, /^cli\t[0-9a-f]{12}\trunning$/m);
    const con = await attach(d.sock, 'cli');
    await con.waitFor(/writer ready/);
    con.send('W cli 2\n');
    await con.waitFor(/done cli/);
    con.close();
    const ps = cli(['ps']);
    assert.equal(ps.status, 0, ps.stderr);
    const [head, row] = ps.stdout.trim().split('\n');
    assert.match(head!, /^NAME\s+STATE\s+IMAGE\s+MEMORY\s+UPTIME\s+CPU%$/);
    assert.match(row!, /^cli\s+running\s+-\s+16M\s+\d+s\s+\d+\.\d$/);
    assert.equal(cli(['logs', 'cli']).stdout, 'writer ready\nsynced cli 1\nsynced cli 2\ndone cli\n');
    assert.equal(cli(['logs', '--tail', '9', 'cli']).stdout, 'done cli\n');
    assert.match(cli(['pause', 'cli']).stdout, /^cli\tpaused$/m);
    assert.match(cli(['resume', 'cli']).stdout, /^cli\trunning$/m);
    const snap = cli(['snapshot', '--name', 'cli-snap', 'cli']);
    assert.equal(snap.status, 0, snap.stderr);
    assert.match(snap.stdout, /^cli-snap\t\d+ bytes\t[\d.]+ ms$/m);
    assert.match(cli(['stop', 'cli']).stdout, /^cli\tstopped$/m);
    const again = cli(['stop', 'cli']);
    assert.equal(again.status, 1);
    assert.equal(again.stderr, 'virtus: stop: the machine is stopped\n');
    assert.match(cli(['start', '--host', `unix:${d.sock}`, 'cli'], { VIRTUS_HOST: 'unix:/nonexistent.sock' }).stdout, /^cli\trunning$/m, '--host wins over VIRTUS_HOST');
    assert.equal(cli(['rm', 'cli']).status, 1, 'a running machine is not removed');
    assert.equal(cli(['rm', '-f', 'cli']).status, 0);
    assert.match(cli(['ps']).stdout.trim(), /^NAME\s+STATE\s+IMAGE\s+MEMORY\s+UPTIME\s+CPU%$/);
    const none = cli(['ps'], { VIRTUS_HOST: `unix:${s.path('nothing.sock')}` });
    assert.equal(none.status, 1);
    assert.match(none.stderr, /^virtus: cannot reach the daemon at unix:.*nothing\.sock: .*is `virtus daemon` running\?/);
    const unknown = cli(['start', 'nosuch']);
    assert.equal(unknown.stderr, "virtus: no machine 'nosuch'\n");
  });

  it('virtus console attaches a terminal (recent output first); Ctrl-A X detaches and the machine runs on', async () => {
    needTool('script', 'bsdutils');
    const c = cli(['create', '--name', 'tty', '--bios', 'none', '--kernel', writerElf(), '-m', '16M', '--drive', `file=${s.path('base.img')},format=raw,overlay=${s.path('tty.qcow2')}`, '--start']);
    assert.equal(c.status, 0, c.stderr);
    const con = await attach(d.sock, 'tty');
    await con.waitFor(/writer ready/);
    // script(1) gives the console command a terminal (raw mode, the Ctrl-A keys).
    const child = spawn('script', ['-qfec', `${process.execPath} ${VIRTUS} console tty`, '/dev/null'], { env: { ...process.env, VIRTUS_HOST: `unix:${d.sock}` } });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (x: string) => (out += x));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await until('the attach', () => out.includes('writer ready'), 30_000).catch((e: Error) => {
      throw new Error(`${e.message}; the terminal showed: ${JSON.stringify(out)}`);
    });
    child.stdin.write('W tty 2\r');
    await until('the guest to answer through the terminal', () => out.includes('done tty'), 30_000);
    child.stdin.write('\x01x');
    assert.equal(await exited, 0);
    assert.match(out, /virtus: detached \(Ctrl-A X\)/);
    assert.equal(curl(d.sock, 'GET', '/vms/tty').body.state, 'running', 'detaching does not stop the machine');
    await con.waitFor(/done tty/);
    con.close();
    assert.equal(cli(['rm', '-f', 'tty']).status, 0);
  });

  it('restart on-failure: a failing guest is started again, with growing delays, until stopped', async () => {
    // cli/exitcode.S exits with code 42: a failure.
    const r = curl(d.sock, 'POST', '/vms', { name: 'fails', restart: 'on-failure', spec: { memory: 16 << 20, boot: { mode: 'bare', kernel: buildGuest('cli-exitcode', ['cli/exitcode.S']) } }, start: true });
    assert.equal(r.status, 201, r.text);
    const m = await until('two restarts', () => {
      const x = curl(d.sock, 'GET', '/vms/fails').body;
      return x.restarts >= 3 && x;
    });
    assert.equal(m.stop?.code ?? 42, 42);
    const st = curl(d.sock, 'POST', '/vms/fails/stop');
    assert.equal(st.status, 200, st.text);
    const n = curl(d.sock, 'GET', '/vms/fails').body.restarts;
    await new Promise((res) => setTimeout(res, 1000));
    const after = curl(d.sock, 'GET', '/vms/fails').body;
    assert.equal(after.state, 'stopped');
    assert.equal(after.restarts, n, 'a stopped machine is not restarted');
    // A guest that exits 0 is not a failure.
    const ok = curl(d.sock, 'POST', '/vms', { name: 'fine', restart: 'on-failure', spec: { memory: 16 << 20, boot: { mode: 'bare', kernel: buildGuest('daemon-exit0', ['common/crt.S', 'daemon/exit0.c']) } }, start: true });
    assert.equal(ok.status, 201, ok.text);
    const fine = await until('the guest to end', () => {
      const x = curl(d.sock, 'GET', '/vms/fine').body;
      return x.state === 'stopped' && x;
    });
    await new Promise((res) => setTimeout(res, 500));
    assert.equal(curl(d.sock, 'GET', '/vms/fine').body.restarts, 0);
    assert.equal(fine.stop.code, 0);
  });
});
