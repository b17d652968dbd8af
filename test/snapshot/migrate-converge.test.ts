/**
 * Migrations that converge, and migrations that end early, between `virtus run` processes on
 * loopback, with the rewrite workload (test/guest/migrate/rewrite.c: 64 MiB rewritten per
 * sweep, each sweep's sum printed). An uninterrupted run on QEMU's virt machine is the
 * reference: whatever happens to a migration, source and target together print every line of
 * it exactly once, in order.
 * - Auto-converge at QEMU's default 128 MiB/s: the guest dirties far more than the link
 *   carries until the throttle (reported by `info migrate`) slows it; the downtime stays within
 *   the downtime limit.
 * - One source through three endings: a cancel (the source runs on, the target sees the
 *   stream end and waits on), a target killed during pre-copy (the source runs on), and the
 *   guest powering off during a migration (the source ends with the guest's exit code and one
 *   line, the target waits on).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort, killAll, migratedLine, monitor, rewriteGuest, runQemuVirt, startProc, type Proc } from '../support/migration.ts';

const dir = mkdtempSync(join(tmpdir(), 'virtus-migrate-converge-'));
after(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

const MEMORY = '256M';

function reference(elf: string): string {
  const q = runQemuVirt(elf, MEMORY);
  assert.equal(q.status, 0, q.stderr);
  assert.match(q.stdout, /done\n$/);
  return q.stdout;
}

async function target(port: number): Promise<Proc> {
  const t = startProc(['run', '--incoming', `tcp:127.0.0.1:${port}`, '-m', MEMORY]);
  await t.waitFor(/waiting for a machine/, 'stderr');
  return t;
}

/** Polls `info migrate` until the migration ends; returns the highest throttle it showed. */
async function watch(sock: string): Promise<number> {
  let most = 0;
  for (;;) {
    const [info] = await monitor(sock, 'info migrate').catch((): Array<Record<string, unknown>> => [{ status: 'gone' }]);
    if (typeof info!.throttle === 'number') most = Math.max(most, info!.throttle);
    if (!['setup', 'active', 'stop-and-copy', 'cancelling'].includes(String(info!.status))) return most;
    await new Promise((r) => setTimeout(r, 150));
  }
}

describe('migration convergence', () => {
  it('auto-converge moves a guest that rewrites 64 MiB per sweep, within the downtime limit', async () => {
    const elf = rewriteGuest(80);
    const ref = reference(elf);
    const port = await freePort();
    const tgt = await target(port);
    const sock = join(dir, 'converge.sock');
    // QEMU's defaults but for a quicker throttle ramp (test time): 60 %, then +20 every second round.
    const src = startProc(['run', '--bios', 'none', '--kernel', elf, '-m', MEMORY, '--monitor', `unix:${sock}`,
      '--migrate-capability', 'auto-converge', '--migrate-parameter', 'cpu-throttle-initial=60', '--migrate-parameter', 'cpu-throttle-increment=20']);
    await src.waitFor(/^sweep 3 /m, 'stdout');
    const [answer] = await monitor(sock, `migrate tcp:127.0.0.1:${port}`);
    assert.deepEqual(answer, { ok: true, status: 'active' });
    const seen = await watch(sock);
    assert.equal(await src.exit, 0, src.stderr());
    const r = migratedLine(src.stderr());
    if (!r) {
      tgt.child.kill();
      assert.fail(`the migration did not complete: ${src.stderr()}`);
    }
    process.stderr.write(`# auto-converge: ${r.line}\n`);
    assert.equal(await tgt.exit, 0, tgt.stderr());
    assert.ok(seen > 0, 'info migrate showed the throttle while it ran');
    assert.ok(r.throttle >= seen, `the report's highest throttle (${r.throttle}) covers what was seen (${seen})`);
    assert.ok(r.rounds >= 2, 'the guest dirtied too fast for one round');
    assert.ok(r.downtimeMs <= 300, `downtime ${r.downtimeMs} ms within the 300 ms limit`);
    assert.doesNotMatch(src.stdout(), /done/, 'the source stopped before the end');
    assert.match(tgt.stdout(), /^sweep \d+ /m, 'the target ran sweeps');
    assert.equal(src.stdout() + tgt.stdout(), ref, 'every line once, as an uninterrupted QEMU run prints them');
  });

  it('cancel, a target killed during pre-copy, and a guest powering off mid-migration each end as documented', async () => {
    const elf = rewriteGuest(60);
    const ref = reference(elf);
    const sock = join(dir, 'endings.sock');
    const src = startProc(['run', '--bios', 'none', '--kernel', elf, '-m', MEMORY, '--monitor', `unix:${sock}`,
      '--migrate-parameter', 'max-bandwidth=16M']);
    await src.waitFor(/^sweep 2 /m, 'stdout');

    // A cancel: the source runs on; the target hears a stream that ends and waits for another.
    const p1 = await freePort();
    const t1 = await target(p1);
    await monitor(sock, `migrate tcp:127.0.0.1:${p1}`);
    await waitStatus(sock, 'active');
    const [cancel] = await monitor(sock, 'migrate_cancel');
    assert.deepEqual(cancel, { ok: true });
    await src.waitFor(/migration to tcp:127\.0\.0\.1:\d+ cancelled \(the machine runs on here\)\n/, 'stderr');
    const [afterCancel] = await monitor(sock, 'info migrate');
    assert.equal(afterCancel!.status, 'cancelled');
    await t1.waitFor(/incoming migration from 127\.0\.0\.1:\d+ failed: migration stream is truncated[^\n]*; waiting for another\n/, 'stderr');

    // The target dies during pre-copy: the source runs on.
    await monitor(sock, `migrate tcp:127.0.0.1:${p1}`);
    await waitStatus(sock, 'active');
    t1.child.kill('SIGKILL');
    assert.equal(await t1.exit, null);
    await src.waitFor(/migration to tcp:127\.0\.0\.1:\d+ failed: [^\n]*(closed the connection|broke)[^\n]* \(the machine runs on here\)\n/, 'stderr');
    const [status] = await monitor(sock, 'info status');
    assert.equal(status!.status, 'running');

    // The guest powers off while a slow migration runs: the source ends as the guest asked.
    const p2 = await freePort();
    const t2 = await target(p2);
    await monitor(sock, 'migrate_set_parameter max-bandwidth 1M', `migrate tcp:127.0.0.1:${p2}`);
    assert.equal(await src.exit, 0, src.stderr());
    const lines = src.stderr().trim().split('\n');
    assert.equal(lines.length, 3, src.stderr());
    assert.match(lines[2]!, /^virtus: migration to tcp:127\.0\.0\.1:\d+ failed: the guest stopped the machine during the migration \(poweroff\); nothing was handed over$/);
    await t2.waitFor(/incoming migration from 127\.0\.0\.1:\d+ failed: [^\n]*; waiting for another\n/, 'stderr');
    assert.equal(t2.child.exitCode, null, 'the target waits on');
    t2.child.kill();
    assert.equal(src.stdout(), ref, 'the source ran the whole program, every line once');
  });
});

async function waitStatus(sock: string, want: string): Promise<void> {
  for (;;) {
    const [info] = await monitor(sock, 'info migrate');
    if (info!.status === want) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}
