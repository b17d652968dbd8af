/**
 * Post-copy migrations between `virtus run` processes on loopback, with the rewrite workload
 * (test/guest/migrate/rewrite.c: 64 MiB rewritten per sweep, each sweep's sum printed). An
 * uninterrupted run on QEMU's virt machine is the reference: source and target together print
 * every line of it exactly once, in order.
 * - The switch (migrate-start-postcopy) during pre-copy, on both engines of the target: the
 *   target runs at once, the pages it touches before they arrive are asked for (counted on both
 *   sides), the rest streams at max-postcopy-bandwidth; `info migrate` shows postcopy-active on
 *   both sides meanwhile.
 * - The source killed during post-copy: the target cannot go on and ends with one line and a
 *   non-zero exit; the target killed: the same for the source, whose guest stays stopped.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort, killAll, migratedLine, monitor, rewriteGuest, runQemuVirt, startProc, type Proc } from '../support/migration.ts';

const dir = mkdtempSync(join(tmpdir(), 'virtus-migrate-postcopy-'));
after(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

const MEMORY = '256M';
const POSTCOPY = ['--migrate-capability', 'postcopy-ram'];

function reference(elf: string): string {
  const q = runQemuVirt(elf, MEMORY);
  assert.equal(q.status, 0, q.stderr);
  assert.match(q.stdout, /done\n$/);
  return q.stdout;
}

async function target(port: number, sock: string, extra: string[] = []): Promise<Proc> {
  const t = startProc(['run', '--incoming', `tcp:127.0.0.1:${port}`, '-m', MEMORY, '--monitor', `unix:${sock}`, ...POSTCOPY, ...extra]);
  await t.waitFor(/waiting for a machine/, 'stderr');
  return t;
}

/**
 * Polls `info migrate` on `sock` until `ok` holds; resolves with that answer. A target's monitor
 * listens only once the machine has arrived: until then its socket is not there (30 s at most).
 */
async function until(sock: string, ok: (info: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    let info: Record<string, unknown> | undefined;
    try {
      [info] = await monitor(sock, 'info migrate');
    } catch (e) {
      if (!/ENOENT|ECONNREFUSED/.test(String((e as Error).message)) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    if (info!.status === 'failed') throw new Error(`the migration failed: ${JSON.stringify(info)}`);
    if (ok(info!)) return info!;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts the workload with post-copy allowed, migrates it after sweep 2 and switches to post-copy right away. */
async function switchToPostcopy(elf: string, name: string, port: number, bandwidth: string): Promise<{ src: Proc; sock: string }> {
  const sock = join(dir, `${name}.sock`);
  const src = startProc(['run', '--bios', 'none', '--kernel', elf, '-m', MEMORY, '--monitor', `unix:${sock}`, ...POSTCOPY,
    '--migrate-parameter', 'max-bandwidth=64M', '--migrate-parameter', `max-postcopy-bandwidth=${bandwidth}`]);
  await src.waitFor(/^sweep 2 /m, 'stdout');
  try {
    const [answer] = await monitor(sock, `migrate tcp:127.0.0.1:${port}`);
    assert.deepEqual(answer, { ok: true, status: 'active' });
    // At once: nearly every page is still to come when the target starts (the guest ends within seconds on the source).
    const [start] = await monitor(sock, 'migrate_start_postcopy');
    assert.deepEqual(start, { ok: true });
  } catch (e) {
    throw new Error(`${(e as Error).message}; the source (exit ${await Promise.race([src.exit, new Promise((r) => setTimeout(() => r('running'), 2000))])}): ${src.stderr()}`);
  }
  return { src, sock };
}

/** Polls `info migrate` on `sock` until the migration completes or the process is gone; the statuses seen, in order. */
async function statuses(sock: string): Promise<string[]> {
  const seen: string[] = [];
  // A target serves its monitor once the machine has arrived.
  while (!existsSync(sock)) await new Promise((r) => setTimeout(r, 10));
  for (;;) {
    const [info] = await monitor(sock, 'info migrate').catch((): Array<Record<string, unknown>> => [{ status: 'gone' }]);
    const st = String(info!.status);
    if (seen.at(-1) !== st) seen.push(st);
    if (st === 'completed' || st === 'gone' || st === 'failed') return seen;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('post-copy migration', () => {
  for (const engine of ['jit', 'interp']) {
    it(`moves a guest that rewrites 64 MiB per sweep, pages fetched on demand (target engine ${engine})`, async () => {
      // The interpreter is slower: fewer sweeps keep the target's part short.
      const elf = rewriteGuest(engine === 'jit' ? 40 : 6);
      const ref = reference(elf);
      const port = await freePort();
      const tsock = join(dir, `t-${engine}.sock`);
      const tgt = await target(port, tsock, ['--engine', engine]);
      const { src, sock } = await switchToPostcopy(elf, `pc-${engine}`, port, '16M');
      const onSource = statuses(sock);
      await tgt.waitFor(/machine received after \d+ rounds; running it\n/, 'stderr');
      const onTarget = await statuses(tsock);
      assert.ok((await onSource).includes('postcopy-active'), `info migrate on the source: ${await onSource}`);
      assert.ok(onTarget.includes('postcopy-active'), `info migrate on the target: ${onTarget}`);
      assert.equal(await src.exit, 0, src.stderr());
      const r = migratedLine(src.stderr());
      assert.ok(r, src.stderr());
      const asked = Number(/post-copy, (\d+) pages asked for/.exec(r.line)?.[1]);
      process.stderr.write(`# post-copy (${engine}): ${r.line}\n`);
      assert.ok(asked > 0, `the target asked for pages it touched before they came: ${r.line}`);
      await tgt.waitFor(/^virtus: post-copy complete: every page is here; the guest waited for \d+ of them$/m, 'stderr');
      // The target counts every page its guest waited for; a request still queued when the page came anyway never reaches the source.
      const waited = Number(/the guest waited for (\d+) of them/.exec(tgt.stderr())![1]);
      assert.ok(waited >= asked, `the guest waited for ${waited} pages, the source was asked for ${asked}`);
      assert.equal(await tgt.exit, 0, tgt.stderr());
      assert.doesNotMatch(src.stdout(), /done/, 'the source stopped before the end');
      assert.match(tgt.stdout(), /^sweep \d+ /m, 'the target ran sweeps');
      assert.equal(src.stdout() + tgt.stdout(), ref, 'every line once, as an uninterrupted QEMU run prints them');
    });
  }

  it('a source killed during post-copy ends the target with one line and a non-zero exit', async () => {
    const elf = rewriteGuest(40);
    const port = await freePort();
    const tsock = join(dir, 't-kill.sock');
    const tgt = await target(port, tsock);
    // A slow background stream: post-copy lasts long enough to be cut.
    const { src, sock } = await switchToPostcopy(elf, 'pc-kill', port, '1M');
    await until(sock, (i) => i.status === 'postcopy-active');
    await until(tsock, (i) => i.status === 'postcopy-active');
    src.child.kill('SIGKILL');
    assert.equal(await src.exit, null);
    assert.equal(await tgt.exit, 1, tgt.stderr());
    const lines = tgt.stderr().trim().split('\n');
    assert.match(lines.at(-1)!, /^virtus: post-copy migration failed: the source('s page channel broke: read ECONNRESET| closed its page channel before every page arrived); the machine cannot run on without the rest of its memory$/);
    assert.equal(lines.filter((l) => /post-copy migration failed/.test(l)).length, 1, tgt.stderr());
  });

  it('a target killed during post-copy ends the source with one line and a non-zero exit', async () => {
    const elf = rewriteGuest(40);
    const port = await freePort();
    const tsock = join(dir, 't-kill2.sock');
    const tgt = await target(port, tsock);
    const { src, sock } = await switchToPostcopy(elf, 'pc-kill2', port, '1M');
    await until(sock, (i) => i.status === 'postcopy-active');
    const before = src.stdout();
    tgt.child.kill('SIGKILL');
    assert.equal(await tgt.exit, null);
    assert.equal(await src.exit, 1, src.stderr());
    const lines = src.stderr().trim().split('\n');
    assert.equal(lines.length, 1, src.stderr());
    assert.match(lines[0]!, /^virtus: migration to tcp:127\.0\.0\.1:\d+ failed: the page channel broke \([^)]*\); the machine ran on the target, which cannot get the rest of its memory: it is lost on both sides$/);
    assert.equal(src.stdout(), before, 'the source never ran its guest again');
  });
});
