/**
 * Live migration between two `virtus run` processes on loopback: a bare-metal guest prints a
 * counter every 2 ms (timer interrupts) while rewriting an 8 MiB buffer and checking its
 * checksum; migrated mid-run, the two consoles together hold every counter exactly once and
 * the checksum holds on the target. A target that refuses (incompatible, or a fake one that
 * answers ERR) leaves the source running to its end; truncated, corrupt and newer streams
 * are refused by the target with one line. A deterministic 2-hart machine migrated mid-run
 * prints on the target exactly what its uninterrupted run prints.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileHeader, jsonRecord, Rec, RecordParser, unpackJson } from '../../src/machine/snapshot-format.ts';
import { freePort, monitor, startProc, type Proc } from '../support/migration.ts';
import { buildGuest } from '../support/toolchain.ts';

const dir = mkdtempSync(join(tmpdir(), 'virtus-migrate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// About 8 s of guest time: enough for a migration to finish first even on a loaded host.
const COUNT = 4000;
const prog = () => buildGuest(`snapshot-counter-8m-${COUNT}`, ['common/crt.S', 'snapshot/counter.c'], { cflags: [`-DCOUNT=${COUNT}`, '-DWORDS=(1u<<20)'] });


/** Every counter 0..COUNT-1 exactly once, in order, across the consoles. */
function assertCounters(console: string, count = COUNT): void {
  const seen = [...console.matchAll(/^counter (\d+)$/gm)].map((m) => Number(m[1]));
  assert.equal(seen.length, count, 'no counter lost or repeated');
  seen.forEach((n, i) => assert.equal(n, i, `counter ${i} in its place`));
  assert.match(console, /^checksum ok sweeps=\d+$/m);
}

function source(sock: string, engine: string, extra: string[] = [], elf = prog()): Proc {
  return startProc(['run', '--bios', 'none', '--kernel', elf, '--engine', engine, '--monitor', `unix:${sock}`, ...extra]);
}

/**
 * Runs `run` (a program that prints "started" first) with a monitor, live-migrates it once it
 * started to a target `virtus run --incoming ... targetExtra`, at most three rounds; checks
 * that the migration completed and both sides exited 0, and the source printed nothing more.
 */
async function migrateMidRun(run: string[], targetExtra: string[], sockName: string): Promise<{ src: Proc; target: Proc }> {
  const port = await freePort();
  const sock = join(dir, sockName);
  const target = startProc(['run', '--incoming', `tcp:127.0.0.1:${port}`, ...targetExtra]);
  await target.waitFor(/waiting for a machine/, 'stderr');
  const src = startProc([...run, '--monitor', `unix:${sock}`, '--migrate-max-rounds', '3']);
  await src.waitFor(/^started$/m, 'stdout');
  const [answer] = await monitor(sock, `migrate tcp:127.0.0.1:${port}`);
  assert.deepEqual(answer, { ok: true, status: 'active' });
  assert.equal(await src.exit, 0, src.stderr());
  if (!/migrated to/.test(src.stderr())) {
    target.child.kill();
    assert.fail(`the migration did not complete: ${src.stderr()}`);
  }
  assert.equal(await target.exit, 0, target.stderr());
  assert.equal(src.stdout(), 'started\n', 'the source stopped before the end');
  return { src, target };
}

/** test/guest/smp/counter.c with longer loops: both harts count with amoadd and LR/SC for a few seconds. */
const smpCounter = () => buildGuest('smp-counter2-long', ['smp/crt-smp.S', 'smp/counter.c'], { cflags: ['-DHARTS=2', '-DAMO_ITERS=40000000', '-DLRSC_ITERS=40000000'] });

/** The same guest running twice as long (a source that must outlive several refusals). */
const LONG = 2 * COUNT;
const longProg = () => buildGuest(`snapshot-counter-8m-${LONG}`, ['common/crt.S', 'snapshot/counter.c'], { cflags: [`-DCOUNT=${LONG}`, '-DWORDS=(1u<<20)'] });

/** A fake target: records what the source sends, then answers `answer`. */
function fakeTarget(answer: string): Promise<{ port: number; stream: Promise<Buffer> }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done!: (b: Buffer) => void;
    const stream = new Promise<Buffer>((r) => (done = r));
    const srv = createServer((s) => {
      s.on('close', () => (srv.close(), done(Buffer.concat(chunks))));
      s.on('data', (d: Buffer) => {
        chunks.push(d);
        const all = Buffer.concat(chunks);
        // The end record: type 15, nothing after it.
        if (all.length >= 20 && all[all.length - 20] === 15 && all.readUInt32LE(all.length - 8) === 0) {
          s.end(answer + '\n');
          srv.close();
          done(all);
        }
      });
    }).listen(0, '127.0.0.1', () => resolve({ port: (srv.address() as AddressInfo).port, stream }));
  });
}

describe('live migration', () => {
  let recorded: Buffer | null = null;

  for (const engine of ['jit', 'interp']) {
    it(`moves a running guest to another process, losing and repeating nothing (--engine ${engine})`, async () => {
      const port = await freePort();
      const sock = join(dir, `src-${engine}.sock`);
      const target = startProc(['run', '--incoming', `tcp:127.0.0.1:${port}`, '--engine', engine]);
      await target.waitFor(/waiting for a machine/, 'stderr');
      const src = source(sock, engine, ['--migrate-max-rounds', '4']);
      // 2 s of guest time: long enough for the guest to have swept its buffer once, also under
      // the interpreter on a loaded host (a clean-checkout CI run moved less than the buffer
      // after 0.6 s).
      await src.waitFor(/^counter 1000$/m, 'stdout');
      const [answer] = await monitor(sock, `migrate tcp:127.0.0.1:${port}`);
      assert.deepEqual(answer, { ok: true, status: 'active' });
      assert.equal(await src.exit, 0, src.stderr());
      if (!/migrated to/.test(src.stderr())) {
        // The target waits on for another source: do not wait for it.
        target.child.kill();
        assert.fail(`the migration did not complete: ${src.stderr()}`);
      }
      assert.equal(await target.exit, 0, target.stderr());
      const report = /migrated to tcp:127\.0\.0\.1:\d+: total (\d+) ms, downtime ([\d.]+) ms, (\d+) rounds, (\d+) bytes sent/.exec(src.stderr());
      assert.ok(report, src.stderr());
      assert.ok(Number(report[3]) >= 1 && Number(report[3]) <= 4, 'rounds bounded by --migrate-max-rounds');
      assert.ok(Number(report[4]) > 8 << 20, 'at least the buffer went over');
      process.stderr.write(`# ${engine}: ${report[0]}\n`);
      assert.doesNotMatch(src.stdout(), /checksum ok/, 'the source stopped before the end');
      assertCounters(src.stdout() + target.stdout());
    });
  }

  it('a target that refuses leaves the source running to its end', async () => {
    const sock = join(dir, 'refused.sock');
    const port = await freePort();
    const small = startProc(['run', '--incoming', `tcp:127.0.0.1:${port}`, '--memory', '256M']);
    await small.waitFor(/waiting for a machine/, 'stderr');
    const src = source(sock, 'jit', ['--migrate-max-rounds', '2'], longProg());
    await src.waitFor(/^counter 100$/m, 'stdout');
    // stop and cont: nothing runs in between.
    const [stopped, status1] = await monitor(sock, 'stop', 'info status');
    assert.deepEqual(stopped, { ok: true, status: 'paused' });
    assert.equal(status1!.status, 'paused');
    await new Promise((r) => setTimeout(r, 100));
    const before = src.stdout().length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(src.stdout().length, before, 'a stopped guest prints nothing');
    const saved = join(dir, 'savevm.snap');
    const [sv] = await monitor(sock, `savevm ${saved}`, 'cont');
    assert.equal(sv!.ok, true, JSON.stringify(sv));
    // An incompatible target: it says why and waits on; the source runs on.
    await monitor(sock, `migrate tcp:127.0.0.1:${port}`);
    await small.waitFor(/failed/, 'stderr');
    const lines = small.stderr().trim().split('\n');
    assert.equal(lines.length, 2, small.stderr());
    assert.match(lines[1]!, /^virtus: incoming migration from 127\.0\.0\.1:\d+ failed: the machine has 536870912 bytes of RAM, not the 268435456 of --memory; waiting for another$/);
    await src.waitFor(/migration to .* failed: the target refused the machine: the machine has 536870912 bytes/, 'stderr');
    small.child.kill();
    const [info] = await monitor(sock, 'info migrate');
    assert.equal(info!.status, 'failed');
    // A target that takes the whole stream and then says no.
    const fake = await fakeTarget('ERR not today');
    await monitor(sock, `migrate tcp:127.0.0.1:${fake.port}`);
    recorded = await fake.stream;
    await src.waitFor(/failed: the target refused the machine: not today/, 'stderr');
    const [status] = await monitor(sock, 'info status');
    assert.equal(status!.status, 'running');
    assert.equal(await src.exit, 0, src.stderr());
    assertCounters(src.stdout(), LONG);
    // The machine saved while stopped continues from there (in real time: the same counters follow).
    const sock2 = join(dir, 'restored.sock');
    const restored = startProc(['run', '--restore', saved, '--monitor', `unix:${sock2}`]);
    await restored.waitFor(/^counter \d+$/m, 'stdout');
    const first = Number(/^counter (\d+)$/m.exec(restored.stdout())![1]);
    assert.ok(first >= 100 && first < 200, restored.stdout().slice(0, 200));
    await restored.waitFor(new RegExp(`^counter ${first + 50}$`, 'm'), 'stdout');
    await monitor(sock2, 'quit');
    assert.equal(await restored.exit, 0, restored.stderr());
    // Whole lines only: the quit may land in the middle of one.
    const seen = [...restored.stdout().matchAll(/^counter (\d+)\n/gm)].map((m) => Number(m[1]));
    seen.forEach((n, i) => assert.equal(n, first + i));
    assert.ok(src.stdout().includes(`counter ${first - 1}\n`), 'the source printed what came before');
  });

  it('the target refuses truncated, corrupt, newer and path-naming streams with one line each, and waits on', async () => {
    assert.ok(recorded, 'the previous test recorded a stream');
    const whole = recorded;
    const flip = (at: number) => {
      const b = Buffer.from(whole);
      b[at]! ^= 0x20;
      return b;
    };
    // The stream's configuration with host paths where an older format kept them.
    const p = new RecordParser('t');
    p.push(whole.subarray(16));
    const first = p.next()!;
    const config = unpackJson(first, 't') as { machine: { devices: { shares: unknown[] } } };
    config.machine.devices.shares.push({ path: '/etc', tag: 'host0', readonly: false });
    const naming = Buffer.concat([fileHeader('VIRTMIGR'), jsonRecord(Rec.Config, config), whole.subarray(16 + 20 + first.data.length)]);
    const cases: Array<[Buffer, RegExp]> = [
      [whole.subarray(0, 10), /migration stream is truncated: the source closed it inside its header/],
      [whole.subarray(0, Math.floor(whole.length / 2)), /migration stream is truncated/],
      [whole.subarray(0, whole.length - 20), /ends before|truncated/],
      [flip(Math.floor(whole.length / 3)), /is corrupt/],
      [flip(8).fill(3, 8, 9), /format version 3, newer than this virtus reads \(2\)/],
      [Buffer.from('GET / HTTP/1.1\r\n\r\n'), /not a virtus migration stream/],
      [naming, /machine\.devices\.shares\[0\]\.path: unknown field/],
    ];
    const port = await freePort();
    const target = startProc(['run', '--incoming', `tcp:127.0.0.1:${port}`]);
    await target.waitFor(/waiting for a machine/, 'stderr');
    for (const [i, [bytes, pattern]] of cases.entries()) {
      const answer = await new Promise<string>((resolve) => {
        const s = connect(port, '127.0.0.1', () => s.end(bytes));
        let text = '';
        s.setEncoding('utf8');
        s.on('data', (d: string) => (text += d));
        s.on('error', () => {});
        s.on('close', () => resolve(text));
      });
      assert.match(answer, /^ERR /, 'the source hears why');
      await target.waitFor(new RegExp(`(failed: [^\\n]*\\n[^]*){${i + 1}}`), 'stderr');
      const lines = target.stderr().trim().split('\n');
      assert.equal(lines.length, i + 2, target.stderr());
      assert.match(lines[i + 1]!, /^virtus: incoming migration from 127\.0\.0\.1:\d+ failed: /);
      assert.match(lines[i + 1]!, pattern);
    }
    target.child.kill();
  });

  it('moves a deterministic 2-hart machine mid-run: the target prints what the uninterrupted run prints', async () => {
    const elf = smpCounter();
    const base = ['run', '--bios', 'none', '--smp', '2', '--deterministic', '--kernel', elf];
    const full = startProc(base);
    assert.equal(await full.exit, 0, full.stderr());
    assert.match(full.stdout(), /^started\nharts=0x0+2\namoadd=0x0+4c4b400\nlrsc=0x0+4c4b400\n(.*\n)*PASS\n$/);
    const { src, target } = await migrateMidRun(base, [], 'smp-src.sock');
    assert.equal(src.stdout() + target.stdout(), full.stdout());
  });

  it('moves a 2-hart machine running in threads mid-run: every hart stops at an instruction boundary, the totals stay exact', async () => {
    // Not deterministic: hart 1 runs in a thread of its own on both sides, and the dirty log's
    // rounds stop both harts (a store between clearing the log and the TLB flush would be lost).
    const elf = smpCounter();
    const { src, target } = await migrateMidRun(['run', '--bios', 'none', '--smp', '2', '--stats', '--kernel', elf], ['--stats'], 'smp-threads-src.sock');
    assert.match(src.stderr(), /^ {2}threads of their own +1$/m, src.stderr());
    assert.match(target.stderr(), /^ {2}threads of their own +1$/m, target.stderr());
    assert.match(target.stdout(), /^harts=0x0+2\namoadd=0x0+4c4b400\nlrsc=0x0+4c4b400\n(.*\n)*PASS\n$/);
  });

  it('a machine with a disk on shared storage moves between processes that lock images as QEMU does', async () => {
    const disk = join(dir, 'shared.qcow2');
    const other = join(dir, 'other.qcow2');
    for (const [f, size] of [[disk, '8M'], [other, '4M']] as const) {
      const r = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', f, size], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    }
    const qemuWrite = () => spawnSync('qemu-io', ['-c', 'write 0 4k', disk], { encoding: 'utf8' });
    const sock = join(dir, 'disk-src.sock');
    const src = startProc(['run', '--bios', 'none', '--kernel', longProg(), '--drive', `file=${disk}`, '--monitor', `unix:${sock}`, '--migrate-max-rounds', '3']);
    await src.waitFor(/^counter 100$/m, 'stdout');
    assert.match(qemuWrite().stderr, /Failed to get "write" lock/, 'the source holds the image');
    // A target given another disk refuses at the handover; the source takes its locks back.
    const p1 = await freePort();
    const wrong = startProc(['run', '--incoming', `tcp:127.0.0.1:${p1}`, '--drive', `file=${other}`]);
    await wrong.waitFor(/waiting for a machine/, 'stderr');
    await monitor(sock, `migrate tcp:127.0.0.1:${p1}`);
    await src.waitFor(/migration to .* failed: the target refused the machine: disk .*other\.qcow2 is \d+ bytes, but the snapshot's virtio-blk0 was \d+/, 'stderr');
    wrong.child.kill();
    assert.match(qemuWrite().stderr, /Failed to get "write" lock/, 'the source took the image back');
    // The right disk: the target takes the image once the source has let go of it.
    const p2 = await freePort();
    const target = startProc(['run', '--incoming', `tcp:127.0.0.1:${p2}`, '--drive', `file=${disk}`]);
    await target.waitFor(/waiting for a machine/, 'stderr');
    await monitor(sock, `migrate tcp:127.0.0.1:${p2}`);
    assert.equal(await src.exit, 0, src.stderr());
    if (!/migrated to/.test(src.stderr())) {
      target.child.kill();
      assert.fail(`the migration did not complete: ${src.stderr()}`);
    }
    await target.waitFor(/machine received/, 'stderr');
    assert.match(qemuWrite().stderr, /Failed to get "write" lock/, 'the target holds the image');
    assert.equal(await target.exit, 0, target.stderr());
    assertCounters(src.stdout() + target.stdout(), LONG);
    const check = spawnSync('qemu-img', ['check', disk], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
  });

  it('a source that stalls is dropped after the timeout, and a real machine arrives after it', async () => {
    const port = await freePort();
    const target = startProc(['run', '--incoming', `tcp:127.0.0.1:${port}`], { env: { VIRTUS_MIGRATION_TIMEOUT: '2' } });
    await target.waitFor(/waiting for a machine/, 'stderr');
    // One peer sends a header's worth and stalls; another connects meanwhile and is turned away.
    const stalled = connect(port, '127.0.0.1', () => stalled.write(fileHeader('VIRTMIGR')));
    stalled.on('error', () => {});
    const heard = new Promise<string>((resolve) => {
      let text = '';
      stalled.setEncoding('utf8');
      stalled.on('data', (d: string) => (text += d));
      stalled.on('close', () => resolve(text));
    });
    await new Promise((r) => setTimeout(r, 200));
    const second = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1');
      let text = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => (text += d));
      s.on('error', () => {});
      s.on('close', () => resolve(text));
    });
    assert.match(second, /^ERR the target is receiving another machine/);
    assert.match(await heard, /^ERR the source sent nothing for 2 s/);
    await target.waitFor(/failed: the source sent nothing for 2 s; waiting for another/, 'stderr');
    const sock = join(dir, 'after-stall.sock');
    const src = source(sock, 'jit', ['--migrate-max-rounds', '4']);
    await src.waitFor(/^counter 100$/m, 'stdout');
    await monitor(sock, `migrate tcp:127.0.0.1:${port}`);
    assert.equal(await src.exit, 0, src.stderr());
    assert.equal(await target.exit, 0, target.stderr());
    assertCounters(src.stdout() + target.stdout());
  });
});
