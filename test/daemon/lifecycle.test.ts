/**
 * A machine's life in `virtus daemon`, driven with curl over the unix socket as the README
 * shows: create, start, console, pause, resume, reset, stats, logs, snapshot and a machine made
 * from the snapshot, stop, delete; every answer is checked against the OpenAPI document. Bad
 * requests get their documented codes and change nothing; TCP needs the bearer token; the
 * event stream reports the states; /metrics is the Prometheus text format; --max-memory holds.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { buildGuest } from '../support/toolchain.ts';
import { attach, curl, scratch, startDaemon, subscribe, until, writerElf, type Daemon } from './support.ts';

const MiB = 1024 * 1024;

describe('daemon: lifecycle over curl --unix-socket', () => {
  const s = scratch();
  let d: Daemon;
  let elf = '';
  const spec = (disk: string, overlay: string) => ({ memory: 16 * MiB, boot: { mode: 'bare', kernel: elf }, devices: { disks: [{ file: disk, format: 'raw', overlay }] } });
  const api = (method: string, path: string, body?: unknown) => curl(d.sock, method, path, body);
  const states = () => (api('GET', '/vms').body.machines as Array<{ id: string; state: string }>).map((m) => `${m.id}:${m.state}`).join(' ');

  before(async () => {
    elf = writerElf();
    writeFileSync(s.path('base.img'), Buffer.alloc(MiB));
    d = await startDaemon(s.path('state'), { tcp: true, args: ['--max-memory', '160M'] });
  });
  after(async () => {
    await d?.stop();
    s.cleanup();
  });

  it('creates, starts, attaches, pauses, resumes, resets, stops and deletes a machine', async () => {
    const c = api('POST', '/vms', { name: 'one', spec: spec(s.path('base.img'), s.path('one.qcow2')) });
    assert.equal(c.status, 201, c.text);
    const m = c.body.machines[0];
    assert.equal(m.name, 'one');
    assert.equal(m.state, 'created');
    assert.equal(m.spec.memory, 16 * MiB);
    assert.equal(api('GET', '/vms/one').body.id, m.id, 'a machine is found by name');
    assert.equal(api('GET', `/vms/${m.id}`).body.name, 'one', 'and by id');

    const started = api('POST', '/vms/one/start');
    assert.equal(started.status, 200, started.text);
    assert.equal(started.body.state, 'running');
    const con = await attach(d.sock, 'one');
    await con.waitFor(/writer ready/);
    con.send('W one 3\n');
    await con.waitFor(/done one/);

    const again = api('POST', '/vms/one/start');
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'VMM_STATE');
    assert.equal(api('GET', '/vms/one').body.state, 'running', 'a second start changes nothing');

    assert.equal(api('POST', '/vms/one/pause').body.state, 'paused');
    con.send('R 2\n');
    await new Promise((r) => setTimeout(r, 300));
    assert.doesNotMatch(con.text(), /sector 2:/, 'a paused guest does not run');
    assert.equal(api('POST', '/vms/one/resume').body.state, 'running');
    await con.waitFor(/sector 2: one sector 2/);

    const stats = api('GET', '/vms/one/stats');
    assert.equal(stats.status, 200);
    assert.ok(stats.body.instructions > 0);
    assert.equal(stats.body.virtio['virtio-blk0 flush requests'], 3);
    assert.match(api('GET', '/vms/one/logs').text, /writer ready\nsynced one 1\n/);
    assert.equal(api('GET', '/vms/one/logs?tail=13').text, 'one sector 2\n');

    assert.equal(api('POST', '/vms/one/reset').status, 200);
    await con.waitFor(/writer ready[^]*writer ready/);

    const stopped = api('POST', '/vms/one/stop', { timeout: 0 });
    assert.equal(stopped.body.state, 'stopped');
    assert.equal(stopped.body.stop.reason, 'quit');
    const second = api('POST', '/vms/one/stop');
    assert.equal(second.status, 409);
    assert.equal(second.body.error.code, 'VMM_STATE');
    // Its writes reached its overlay, and were flushed there.
    assert.equal(spawnSync('qemu-img', ['check', s.path('one.qcow2')]).status, 0);

    // Started again, it boots afresh on the same overlay.
    assert.equal(api('POST', '/vms/one/start').body.state, 'running');
    const con2 = await attach(d.sock, 'one');
    await con2.waitFor(/writer ready[^]*writer ready[^]*writer ready/);
    con2.send('R 3\n');
    await con2.waitFor(/sector 3: one sector 3/);
    con.close();
    con2.close();

    const busy = api('DELETE', '/vms/one');
    assert.equal(busy.status, 409, 'a running machine is not deleted without force');
    assert.equal(api('DELETE', '/vms/one?force=true').status, 204);
    assert.equal(api('GET', '/vms/one').status, 404);
    assert.ok(statSync(s.path('one.qcow2')).size > 0, 'an overlay the spec named belongs to the user: it is kept');
  });

  it('saves a running machine to a snapshot and makes a machine of it that goes on from there', async () => {
    const counter = buildGuest('daemon-counter-5000', ['common/crt.S', 'snapshot/counter.c'], { cflags: ['-DCOUNT=5000', '-DWORDS=(1u<<16)'] });
    const c = api('POST', '/vms', { name: 'count', spec: { memory: 16 * MiB, boot: { mode: 'bare', kernel: counter } }, start: true });
    assert.equal(c.status, 201, c.text);
    const con = await attach(d.sock, 'count');
    await con.waitFor(/^counter 100$/m);
    const snap = api('POST', '/vms/count/snapshot', { name: 'count-snap' });
    assert.equal(snap.status, 201, snap.text);
    assert.ok(snap.body.bytes > 0);
    const at = Math.max(...[...api('GET', '/vms/count/logs').text.matchAll(/^counter (\d+)\n/gm)].map((x) => Number(x[1])));
    assert.equal(api('GET', '/snapshots').body.snapshots[0].name, 'count-snap');
    const r = api('POST', '/vms', { name: 'restored', snapshot: 'count-snap', start: true });
    assert.equal(r.status, 201, r.text);
    const con2 = await attach(d.sock, 'restored');
    // A whole line: output arrives in pieces, and `$` would match the end of one cut after "counter 1".
    const first = await con2.waitFor(/^counter (\d+)\r?\n/m);
    assert.ok(Number(first[1]) > 100 && Number(first[1]) <= at + 2, `the restored machine goes on from the snapshot (first line ${first[1]}, snapshot near ${at})`);
    await con2.waitFor(/^checksum ok/m);
    con.close();
    con2.close();
    for (const n of ['count', 'restored']) assert.equal(api('DELETE', `/vms/${n}?force=true`).status, 204);
  });

  it('refuses bad requests with their codes and changes nothing', async () => {
    const c = api('POST', '/vms', { name: 'keep', spec: spec(s.path('base.img'), s.path('keep.qcow2')), start: true });
    assert.equal(c.status, 201, c.text);
    const before = states();
    const bad = (method: string, path: string, body: unknown, status: number, code: string, message?: RegExp, raw?: string) => {
      const a = raw === undefined ? api(method, path, body) : curl(d.sock, method, path, undefined, { raw });
      assert.equal(a.status, status, `${method} ${path}: ${a.text}`);
      assert.equal(a.body.error.code, code, a.text);
      if (message) assert.match(a.body.error.message, message);
    };
    const good = spec(s.path('base.img'), s.path('x.qcow2'));
    bad('POST', '/vms', { spec: good, colour: 'red' }, 400, 'BAD_REQUEST', /body: unknown field "colour"/);
    bad('POST', '/vms', { spec: { ...good, devices: { disks: [{ file: '/x', size: 1 }] } } }, 400, 'BAD_REQUEST', /body\.spec\.devices\.disks\[0\]: unknown field "size"/);
    bad('POST', '/vms', { spec: { ...good, memory: '16M' } }, 400, 'BAD_REQUEST', /body\.spec\.memory: must be integer/);
    bad('POST', '/vms', { spec: good, count: 'two' }, 400, 'BAD_REQUEST', /count/);
    bad('POST', '/vms', { spec: good, image: 'default' }, 400, 'BAD_REQUEST', /exactly one of spec, image, snapshot/);
    bad('POST', '/vms', {}, 400, 'BAD_REQUEST');
    bad('POST', '/vms', undefined, 400, 'BAD_REQUEST', /body/, '{"spec": ');
    bad('POST', '/vms', { name: 'keep', spec: good }, 409, 'NAME_TAKEN');
    bad('POST', '/vms', { image: 'no-such-image:1' }, 404, 'NO_SUCH_IMAGE');
    bad('POST', '/vms', { snapshot: 'nothing' }, 404, 'NO_SUCH_SNAPSHOT');
    bad('POST', '/vms', { spec: { ...good, memory: 256 * MiB }, start: true }, 409, 'NO_MEMORY', /--max-memory/);
    bad('GET', '/vms/nosuch', undefined, 404, 'NO_SUCH_VM');
    bad('POST', '/vms/nosuch/start', undefined, 404, 'NO_SUCH_VM');
    bad('DELETE', '/vms/nosuch', undefined, 404, 'NO_SUCH_VM');
    bad('POST', '/vms/keep/start', undefined, 409, 'VMM_STATE');
    bad('POST', '/vms/keep/stop', { timeout: 'soon' }, 400, 'BAD_REQUEST', /body\.timeout/);
    bad('POST', '/vms/keep/stop', { graceful: true }, 400, 'BAD_REQUEST', /unknown field "graceful"/);
    bad('GET', '/vms/keep/logs?tail=-1', undefined, 400, 'BAD_REQUEST', /query\.tail/);
    bad('POST', '/vms/keep/migrate', { to: 'http://elsewhere' }, 400, 'BAD_REQUEST', /body\.to/);
    bad('POST', '/vms/keep/snapshot', { name: '../escape' }, 400, 'BAD_REQUEST', /body\.name/);
    // A migration to a port nobody listens on fails at once; the machine runs on.
    const closed = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const port = (srv.address() as { port: number }).port;
        srv.close(() => resolve(port));
      });
    });
    bad('POST', '/vms/keep/migrate', { to: `tcp:127.0.0.1:${closed}` }, 502, 'MIGRATE_FAILED', /ECONNREFUSED/);
    const nf = curl(d.sock, 'GET', '/nowhere', undefined, { check: false });
    assert.equal(nf.status, 404);
    assert.equal(nf.body.error.code, 'NOT_FOUND');
    const na = curl(d.sock, 'PUT', '/vms', undefined, { check: false });
    assert.equal(na.status, 405);
    assert.equal(na.body.error.code, 'METHOD_NOT_ALLOWED');
    const ws = spawnSync('curl', ['-s', '--unix-socket', d.sock, '-i', '-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket', '-H', 'Sec-WebSocket-Version: 13', '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'http://localhost/vms/nosuch/console'], { encoding: 'utf8', timeout: 5000 });
    assert.match(ws.stdout, /^HTTP\/1.1 404/, 'an unknown machine\'s console is refused before the upgrade');
    assert.match(ws.stdout, /NO_SUCH_VM/);
    assert.equal(states(), before, 'no machine was made, changed or removed');
    const con = await attach(d.sock, 'keep');
    await con.waitFor(/writer ready/);
    con.send('W keep 1\n');
    await con.waitFor(/done keep/);
    con.close();
  });

  it('demands the bearer token on TCP; the token file is private', async () => {
    assert.ok(d.tcp);
    const [, host, port] = /^tcp:(.*):(\d+)$/.exec(d.tcp)!;
    const token = spawnSync('cat', [`${d.state}/token`], { encoding: 'utf8' }).stdout.trim();
    assert.match(token, /^[0-9a-f]{64}$/);
    assert.equal(statSync(`${d.state}/token`).mode & 0o777, 0o600);
    assert.equal(statSync(d.sock).mode & 0o777, 0o600);
    const get = (headers: Record<string, string>) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        request({ host, port: Number(port), path: '/vms', headers }, (res) => {
          let b = '';
          res.setEncoding('utf8');
          res.on('data', (x: string) => (b += x));
          res.on('end', () => resolve({ status: res.statusCode!, body: b }));
        }).on('error', reject).end();
      });
    const none = await get({});
    assert.equal(none.status, 401);
    assert.equal(JSON.parse(none.body).error.code, 'UNAUTHORIZED');
    assert.equal((await get({ authorization: `Bearer ${'0'.repeat(64)}` })).status, 401);
    const ok = await get({ authorization: `Bearer ${token}` });
    assert.equal(ok.status, 200);
    assert.ok(Array.isArray(JSON.parse(ok.body).machines));
  });

  it('streams events: states, the stop and its reason', async () => {
    const log = subscribe(d.sock);
    await log.ready;
    assert.equal(log.contentType(), 'text/event-stream');
    const events = log.events;
    const c = api('POST', '/vms', { name: 'ev', spec: { memory: 16 * MiB, boot: { mode: 'bare', kernel: buildGuest('cli-exitcode', ['cli/exitcode.S']) } }, start: true });
    assert.equal(c.status, 201, c.text);
    await until('the stop event', () => events.find((e) => e.type === 'stop' && e.data.name === 'ev'));
    log.close();
    const mine = events.filter((e) => e.data.name === 'ev');
    assert.deepEqual(mine.map((e) => (e.type === 'state' ? `state:${e.data.state}` : e.type)), ['created', 'state:starting', 'state:running', 'stop', 'state:stopped']);
    const stop = mine.find((e) => e.type === 'stop')!.data;
    assert.equal(stop.reason, 'exit');
    assert.equal(stop.code, 42, 'the guest\'s own exit code');
    assert.equal(api('DELETE', '/vms/ev').status, 204);
  });

  it('serves /metrics in the Prometheus text format', () => {
    const m = curl(d.sock, 'GET', '/metrics');
    assert.equal(m.status, 200);
    const lines = m.text.trimEnd().split('\n');
    const declared = new Set<string>();
    for (const l of lines) {
      const t = /^# TYPE (\S+) (counter|gauge)$/.exec(l);
      if (t) declared.add(t[1]!);
      if (l.startsWith('#')) continue;
      const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)?\})? (-?[0-9.e+]+)$/.exec(l);
      assert.ok(s, `a sample line: ${l}`);
      assert.ok(declared.has(s[1]!), `${s[1]} has its TYPE before its samples`);
    }
    const instr = /^virtus_machine_instructions_total\{machine="keep",id="[0-9a-f]+"\} (\d+)$/m.exec(m.text);
    assert.ok(instr && Number(instr[1]) > 0, 'the running machine counts instructions');
    assert.match(m.text, /^virtus_machine_virtio_total\{machine="keep",id="[0-9a-f]+",device="virtio-blk0",counter="flush_requests"\} 1$/m);
    assert.match(m.text, /^virtus_machine_exits_total\{machine="keep",id="[0-9a-f]+",kind="mmio"\} [1-9]\d*$/m);
    assert.match(m.text, /^virtus_memory_limit_bytes 167772160$/m);
  });
});
