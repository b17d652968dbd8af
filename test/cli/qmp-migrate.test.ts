/**
 * QMP's migration commands, virtus against `qemu-system-riscv64` (Debian's QEMU 7.2) on the
 * same command line and the same script: migrate-set-capabilities, migrate-set-parameters and
 * their queries answer with the same values; refusals carry QEMU's class and words; and
 * query-migrate has QEMU's shape (the same members, of the same types, at every level) before
 * a migration, while one runs (slowed by max-bandwidth, towards a target of its own kind
 * waiting with -incoming) and once it is cancelled; the MIGRATION events (the `events`
 * capability) say the same. Post-copy (postcopy-ram on both sides, migrate-start-postcopy
 * during pre-copy, a slow max-postcopy-bandwidth): query-migrate while postcopy-active has
 * QEMU's shape on the source and QEMU's answer on the target (its status and the address it
 * listened on), and the events go setup, active, postcopy-active, completed on both.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { freePort, rewriteGuest } from '../support/migration.ts';
import { QmpMachine, type Json, type QmpClient } from '../support/qmp.ts';

const machines: QmpMachine[] = [];
after(async () => {
  for (const m of machines) await m.stop();
});

/** The guest: 4 MiB rewritten per sweep, for far longer than the test. */
const ELF = rewriteGuest(100000, { mib: 4 });
const ARGS = ['-M', 'virt', '-m', '256M', '-nographic', '-bios', 'none', '-kernel', ELF];

/** A value's shape: the same members and types, values left out. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, shape(x)]));
  return typeof v;
}

async function negotiated(m: QmpMachine): Promise<QmpClient> {
  const q = await m.connect();
  await q.greeting();
  assert.deepEqual(await q.execute('qmp_capabilities'), { return: {} });
  return q;
}

/** Polls query-migrate until its status is `want`. */
async function until(q: QmpClient, want: string): Promise<Json> {
  for (;;) {
    const r = (await q.execute('query-migrate')).return as Json;
    if (r.status === want) return r;
    if (r.status === 'failed' || r.status === 'completed') throw new Error(`query-migrate: ${JSON.stringify(r)} while waiting for ${want}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

interface Transcript {
  settings: Json[];
  refusals: Json[];
  none: Json;
  active: unknown;
  throttled: unknown;
  cancelled: Json;
  events: unknown[];
}

/**
 * A source running the guest (its monitor negotiated, the guest at its second sweep) and a
 * target waiting on a free port: QEMU's target is started as its source is; virtus's takes the
 * machine from the stream. Both listen before their monitors answer (QEMU), or say so (virtus).
 */
async function sourceAndTarget(kind: 'virtus' | 'qemu'): Promise<{ port: number; q: QmpClient }> {
  const port = await freePort();
  const tgt = new QmpMachine(kind, [...(kind === 'qemu' ? ARGS : ['-m', '256M', '-nographic']), '-incoming', `tcp:127.0.0.1:${port}`]);
  const src = new QmpMachine(kind, ARGS);
  machines.push(tgt, src);
  const q = await negotiated(src);
  await src.waitOutput(/^sweep 2 /m);
  if (kind === 'qemu') (await negotiated(tgt)).close();
  else while (!/waiting for a machine/.test(tgt.stderr)) await new Promise((res) => setTimeout(res, 20));
  return { port, q };
}

async function script(kind: 'virtus' | 'qemu'): Promise<Transcript> {
  const { port, q } = await sourceAndTarget(kind);
  const settings = [
    await q.execute('query-migrate-capabilities'),
    await q.execute('query-migrate-parameters'),
    await q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'auto-converge', state: true }, { capability: 'xbzrle', state: true }, { capability: 'events', state: true }] }),
    await q.execute('migrate-set-parameters', { 'downtime-limit': 50, 'max-bandwidth': 2 << 20, 'cpu-throttle-initial': 30, 'cpu-throttle-increment': 15, 'xbzrle-cache-size': 16 << 20, 'throttle-trigger-threshold': 10 }),
    await q.execute('query-migrate-capabilities'),
    await q.execute('query-migrate-parameters'),
  ];
  const refusals = [
    await q.execute('migrate-set-parameters', { 'downtime-limit': 2_000_001 }),
    await q.execute('migrate-set-parameters', { 'cpu-throttle-initial': 0 }),
    await q.execute('migrate-set-parameters', { 'cpu-throttle-increment': 100 }),
    await q.execute('migrate-set-parameters', { 'xbzrle-cache-size': 1000 }),
    await q.execute('migrate-set-parameters', { 'max-cpu-throttle': 10 }),
    await q.execute('migrate-set-parameters', { 'throttle-trigger-threshold': 0 }),
    await q.execute('migrate-set-parameters', { 'downtime-limit': -1 }),
    await q.execute('migrate-set-parameters', { 'downtime-limit': 'soon' }),
    await q.execute('migrate-set-parameters', { 'downtime-limit': 1.5 }),
    await q.execute('migrate-set-parameters', { 'max-bandwidth': -1 }),
    await q.execute('migrate-set-parameters', { 'max-bandwidth': 'x' }),
    await q.execute('migrate-set-parameters', { 'cpu-throttle-initial': -1 }),
    await q.execute('migrate-set-parameters', { 'cpu-throttle-initial': 300 }),
    await q.execute('migrate-set-parameters', { 'cpu-throttle-tailslow': 1 }),
    await q.execute('migrate-set-parameters', { 'no-such-parameter': 1 }),
    await q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'no-such-capability', state: true }] }),
    await q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'xbzrle' }] }),
    await q.execute('migrate-start-postcopy'),
    await q.execute('migrate_cancel'),
  ];
  // Some refusals are accepted values on QEMU (a negative uint64 wraps): the settings again.
  refusals.push(await q.execute('migrate-set-parameters', { 'max-bandwidth': 2 << 20, 'downtime-limit': 50 }));
  const none = await q.execute('query-migrate');
  assert.deepEqual(await q.execute('migrate', { uri: `tcp:127.0.0.1:${port}` }), { return: {} });
  const active = await until(q, 'active');
  // Rounds at 2 MiB/s against a guest dirtying 4 MiB per sweep: auto-converge throttles it.
  let throttled: Json;
  for (;;) {
    throttled = (await q.execute('query-migrate')).return as Json;
    if (typeof throttled['cpu-throttle-percentage'] === 'number') break;
    if (throttled.status !== 'active') throw new Error(`query-migrate: ${JSON.stringify(throttled)} while waiting for a throttle`);
    await new Promise((res) => setTimeout(res, 100));
  }
  const refused = await q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'xbzrle', state: false }] });
  refusals.push(refused);
  assert.deepEqual(await q.execute('migrate_cancel'), { return: {} });
  const cancelled = await until(q, 'cancelled');
  const events = q.events().map((e) => [e.message.event, e.message.data]).filter(([name]) => name === 'MIGRATION');
  return { settings, refusals, none, active: shape(active), throttled: shape(throttled), cancelled, events };
}

/** A post-copy migration: query-migrate's shape while postcopy-active, and the MIGRATION events. */
async function postcopy(kind: 'virtus' | 'qemu'): Promise<{ active: unknown; requests: unknown; onTarget: Json; events: unknown[] }> {
  const port = await freePort();
  const tgt = new QmpMachine(kind, [...(kind === 'qemu' ? ARGS : ['-m', '256M', '-nographic', '--migrate-capability', 'postcopy-ram']), '-incoming', `tcp:127.0.0.1:${port}`]);
  const src = new QmpMachine(kind, ARGS);
  machines.push(tgt, src);
  const q = await negotiated(src);
  await src.waitOutput(/^sweep 2 /m);
  if (kind === 'qemu') {
    const t = await negotiated(tgt);
    assert.deepEqual(await t.execute('migrate-set-capabilities', { capabilities: [{ capability: 'postcopy-ram', state: true }] }), { return: {} });
    t.close();
  } else while (!/waiting for a machine/.test(tgt.stderr)) await new Promise((res) => setTimeout(res, 20));
  await q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'postcopy-ram', state: true }, { capability: 'events', state: true }] });
  await q.execute('migrate-set-parameters', { 'max-bandwidth': 8 << 20, 'max-postcopy-bandwidth': 1 << 20 });
  assert.deepEqual(await q.execute('migrate', { uri: `tcp:127.0.0.1:${port}` }), { return: {} });
  await until(q, 'active');
  assert.deepEqual(await q.execute('migrate-start-postcopy'), { return: {} });
  const active = await until(q, 'postcopy-active');
  const requests = typeof (active.ram as Json)['postcopy-requests'];
  // The target's view meanwhile (virtus's target serves QMP once the machine has arrived).
  // QEMU's target enters postcopy-active when it handles the source's listen command, a moment
  // after the source has; both targets are asked until they report it.
  const t = await negotiated(tgt);
  let seen = (await t.execute('query-migrate')).return as Json;
  for (let i = 0; seen.status === 'active' && i < 100; i++) {
    await new Promise((res) => setTimeout(res, 50));
    seen = (await t.execute('query-migrate')).return as Json;
  }
  // The port each run chose, named so the two runs compare.
  const onTarget = JSON.parse(JSON.stringify(seen).replaceAll(`"port":"${port}"`, '"port":"PORT"')) as Json;
  t.close();
  // The end: QEMU's source reports completed; virtus's ends once the target has every page.
  for (;;) {
    const r = await q.execute('query-migrate').catch(() => null);
    if (!r || (r.return as Json).status === 'completed') break;
    if ((r.return as Json).status === 'failed') throw new Error(`${kind}: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  if (kind === 'virtus') assert.equal(await src.exited, 0, src.stderr);
  const events = q.events().map((e) => [e.message.event, e.message.data]).filter(([name]) => name === 'MIGRATION');
  return { active: shape(active), requests, onTarget, events };
}

/**
 * query-migrate twice, half a second apart, inside the first round of a migration slowed to
 * 1 MiB/s: whether the bytes sent grew, at no more than the limit, and the round stayed the same.
 */
async function firstRound(kind: 'virtus' | 'qemu'): Promise<{ grew: boolean; withinLimit: boolean; sameRound: boolean }> {
  const { port, q } = await sourceAndTarget(kind);
  await q.execute('migrate-set-parameters', { 'max-bandwidth': 1 << 20 });
  assert.deepEqual(await q.execute('migrate', { uri: `tcp:127.0.0.1:${port}` }), { return: {} });
  const a = await until(q, 'active');
  await new Promise((res) => setTimeout(res, 500));
  const b = (await q.execute('query-migrate')).return as Json;
  await q.execute('migrate_cancel');
  await until(q, 'cancelled');
  const ram = (x: Json): Json => x.ram as Json;
  const sent = Number(ram(b).transferred) - Number(ram(a).transferred);
  // Half a second at 1 MiB/s, with room for a period's budget either side.
  return { grew: sent > 0, withinLimit: sent <= 1 << 20, sameRound: ram(b)['dirty-sync-count'] === ram(a)['dirty-sync-count'] };
}

describe('QMP migration commands: virtus answers as QEMU 7.2 does', { timeout: 3 * 60_000 }, () => {
  it('query-migrate counts the bytes sent while a round goes on', async () => {
    const qemu = await firstRound('qemu');
    assert.deepEqual(qemu, { grew: true, withinLimit: true, sameRound: true }, 'QEMU');
    assert.deepEqual(await firstRound('virtus'), qemu);
  });

  it('post-copy: the same query-migrate shape while postcopy-active, and the same events', async () => {
    const qemu = await postcopy('qemu');
    const virtus = await postcopy('virtus');
    assert.deepEqual(virtus.active, qemu.active);
    assert.equal(qemu.requests, 'number');
    assert.deepEqual(virtus.onTarget, qemu.onTarget);
    assert.deepEqual(virtus.events, qemu.events);
    assert.deepEqual(qemu.events.map((e) => (e as unknown[])[1]), [{ status: 'setup' }, { status: 'active' }, { status: 'postcopy-active' }, { status: 'completed' }]);
  });

  it('the same settings, refusals and query-migrate shapes', async () => {
    const qemu = await script('qemu');
    const virtus = await script('virtus');
    assert.deepEqual(virtus.settings, qemu.settings);
    assert.deepEqual(virtus.refusals, qemu.refusals);
    assert.deepEqual(virtus.none, qemu.none);
    assert.deepEqual(virtus.active, qemu.active);
    assert.deepEqual(virtus.throttled, qemu.throttled);
    assert.deepEqual(virtus.cancelled, qemu.cancelled);
    assert.deepEqual(virtus.events, qemu.events);
    // What the comparison stands on.
    assert.deepEqual(qemu.events.map((e) => (e as unknown[])[1]), [{ status: 'setup' }, { status: 'active' }, { status: 'cancelling' }, { status: 'cancelled' }]);
  });
});
