/**
 * QMP conformance: `virtus run` and `qemu-system-riscv64` (Debian's QEMU 7.2) on the same
 * command line (`-M virt -m 256M -nographic -bios none -kernel idle.elf -qmp unix:...`), driven
 * by the same QMP script, must answer alike: the same replies (same keys, types and values,
 * except where values must differ: versions, timestamps, the wording of a JSON parser's
 * complaint), the same events with the same data, in the same places among the replies, and
 * the same end (the connection closed, exit code 0). The script covers capabilities
 * negotiation (and a command before it, on a first connection: QEMU serves one connection at
 * a time), query-status, stop, cont, system_reset, system_powerdown, query-migrate, unknown
 * commands, arguments and members, malformed JSON, bare values, requests with ids,
 * human-monitor-command, several commands in one write and one command split over two, quit;
 * once with the machine running and once started with -S (prelaunch).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { buildGuest } from '../support/toolchain.ts';
import { QmpMachine, type Json, type QmpClient } from '../support/qmp.ts';

const IDLE = buildGuest('vmm-idle', ['vmm/idle.S']);
const REBOOT = buildGuest('cli-reboot', ['cli/reboot.S']);

const machines: QmpMachine[] = [];
after(async () => {
  for (const m of machines) await m.stop();
});

function start(kind: 'virtus' | 'qemu', elf: string, extra: string[] = []): QmpMachine {
  const m = new QmpMachine(kind, ['-M', 'virt', '-m', '256M', '-nographic', '-bios', 'none', '-kernel', elf, ...extra]);
  machines.push(m);
  return m;
}

/** One step of a script: what to write, and how many replies it gets. */
interface Step {
  name: string;
  write: string | string[];
  replies?: number;
  /** An error's `desc` is free text here (a JSON parser's complaint). */
  looseDesc?: boolean;
  /** After the replies arrived: wait for what the step caused. */
  then?: (m: QmpMachine, q: QmpClient) => Promise<void>;
}

/** What a machine answered to a script. */
interface Transcript {
  before: { greeting: Json; reply: Json };
  greeting: Json;
  steps: Array<{ name: string; replies: Json[] }>;
  events: Array<{ event: unknown; data?: unknown; timestamp: unknown; afterReplies: number }>;
  closed: boolean;
  exitCode: number | null;
  output: string;
}

const cmd = (execute: string, args?: Json, extra: Json = {}): string => JSON.stringify({ execute, ...(args ? { arguments: args } : {}), ...extra });

async function runScript(kind: 'virtus' | 'qemu', elf: string, extra: string[], steps: Step[]): Promise<Transcript> {
  const m = start(kind, elf, extra);
  // A command before capabilities negotiation, on a connection of its own.
  const first = await m.connect();
  const before = { greeting: await first.greeting(), reply: await first.execute('query-status') };
  first.close();
  const q = await m.connect();
  const greeting = await q.greeting();
  const done: Transcript['steps'] = [];
  for (const s of steps) {
    const writes = typeof s.write === 'string' ? [s.write] : s.write;
    const replies: Json[] = [];
    for (const [i, w] of writes.entries()) {
      q.write(w);
      // A split command: the part before the split ends with a complete request, whose reply
      // proves the server has read (and kept) the first part before the rest is sent.
      if (i < writes.length - 1) replies.push(await q.reply());
    }
    for (let n = replies.length; n < (s.replies ?? 1); n++) replies.push(await q.reply());
    done.push({ name: s.name, replies: s.looseDesc ? replies.map(looseDesc) : replies });
    await s.then?.(m, q);
  }
  await q.closed();
  const exitCode = await m.exited;
  const events = q.events().map(({ message: { event, data, timestamp }, afterReplies }) => ({ event, ...(data !== undefined ? { data } : {}), timestamp, afterReplies }));
  return { before, greeting, steps: done, events, closed: true, exitCode, output: m.output };
}

/** A reply's error text replaced by its type. */
function looseDesc(r: Json): Json {
  const e = r.error as Json | undefined;
  return e ? { ...r, error: { ...e, desc: typeof e.desc } } : r;
}

/** The type skeleton of a value: what must agree where the values may not. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]).sort());
  return typeof v;
}

/** The transcript with the values that must differ between the two reduced to their types. */
function comparable(t: Transcript): unknown {
  const greet = (g: Json): unknown => ({ QMP: { ...(g.QMP as Json), version: shape((g.QMP as Json).version) } });
  return {
    ...t,
    before: { greeting: greet(t.before.greeting), reply: t.before.reply },
    greeting: greet(t.greeting),
    steps: t.steps.map((s) => (s.name === 'query-version' ? { ...s, replies: s.replies.map(shape) } : s)),
    events: t.events.map((e) => ({ ...e, timestamp: shape(e.timestamp) })),
  };
}

/** Checks virtus's event timestamps: QEMU's wall-clock seconds and microseconds. */
function checkTimestamps(t: Transcript): void {
  const now = Date.now() / 1000;
  for (const e of t.events) {
    const ts = e.timestamp as { seconds: number; microseconds: number };
    assert.ok(Number.isInteger(ts.seconds) && Math.abs(ts.seconds - now) < 600, JSON.stringify(ts));
    assert.ok(Number.isInteger(ts.microseconds) && ts.microseconds >= 0 && ts.microseconds < 1e6, JSON.stringify(ts));
  }
}

/** The steps both the running and the prelaunch scripts end with: input QEMU refuses, and quit. */
const REFUSALS: Step[] = [
  { name: 'query-migrate', write: cmd('query-migrate') },
  { name: 'an unknown command, with an id', write: cmd('no-such-command', undefined, { id: 7 }) },
  { name: 'malformed JSON', write: '{"execute": "query-status", }\n', looseDesc: true },
  { name: 'a bare string', write: '"a\\u00e9"\n' },
  { name: 'a bare number', write: '123\n' },
  { name: 'an array', write: '[{"execute":"query-status"}]' },
  { name: 'no execute', write: '{"arguments":{}}' },
  { name: 'execute not a string', write: '{"execute":3}' },
  { name: 'an unexpected member', write: '{"execute":"query-status","foo":1}' },
  { name: 'arguments not an object', write: '{"execute":"query-status","arguments":[]}' },
  { name: 'an unexpected argument', write: cmd('stop', { force: true }) },
  { name: "an argument named like an object's own property", write: cmd('migrate', { uri: 'tcp:127.0.0.1:1', constructor: 1 }) },
  { name: 'a missing argument', write: cmd('migrate', {}) },
  { name: 'an argument of the wrong type', write: cmd('migrate', { uri: 5 }) },
  { name: 'exec-oob without the oob capability', write: '{"exec-oob":"query-status","id":"x"}' },
  { name: 'a second qmp_capabilities', write: cmd('qmp_capabilities') },
  { name: 'an id of every kind', write: [cmd('query-status', undefined, { id: 'a-1' }), cmd('query-status', undefined, { id: { a: [1, 2.5, null, true] } })], replies: 2 },
  { name: 'human-monitor-command: an unknown command', write: cmd('human-monitor-command', { 'command-line': 'nonsense' }) },
  { name: 'human-monitor-command: an unknown info', write: cmd('human-monitor-command', { 'command-line': 'info nonsense' }) },
  { name: 'human-monitor-command: an empty line', write: cmd('human-monitor-command', { 'command-line': '' }) },
  { name: 'query-version', write: cmd('query-version') },
  { name: 'query-name', write: cmd('query-name') },
  { name: 'quit', write: cmd('quit') },
];

const waitEvent = (name: string, n = 1) => async (_m: QmpMachine, q: QmpClient): Promise<void> => void (await q.event(name, n));

const RUNNING: Step[] = [
  { name: 'qmp_capabilities', write: cmd('qmp_capabilities'), then: (m) => m.waitOutput(/^ready\n$/) },
  { name: 'query-status', write: cmd('query-status') },
  { name: 'stop', write: cmd('stop'), then: waitEvent('STOP') },
  { name: 'query-status (paused)', write: cmd('query-status') },
  { name: 'stop again', write: cmd('stop') },
  { name: 'human-monitor-command: info status (paused)', write: cmd('human-monitor-command', { 'command-line': 'info status' }) },
  { name: 'cont', write: cmd('cont'), then: waitEvent('RESUME') },
  { name: 'query-status (running)', write: cmd('query-status') },
  { name: 'system_reset', write: cmd('system_reset'), then: async (m, q) => (await q.event('RESET'), await m.waitOutput(/^ready\nready\n$/)) },
  { name: 'system_powerdown', write: cmd('system_powerdown'), then: waitEvent('POWERDOWN') },
  { name: 'human-monitor-command: info status', write: cmd('human-monitor-command', { 'command-line': 'info status' }) },
  { name: 'three commands in one write, no newlines', write: cmd('stop') + cmd('query-status') + cmd('cont'), replies: 3, then: waitEvent('RESUME', 2) },
  { name: 'a command split over two writes', write: [`${cmd('query-status', undefined, { id: 1 })}{"execute":"query-`, 'status","id":2}\n'], replies: 2 },
  ...REFUSALS,
];

const PRELAUNCH: Step[] = [
  { name: 'qmp_capabilities', write: cmd('qmp_capabilities') },
  { name: 'query-status (prelaunch)', write: cmd('query-status') },
  { name: 'human-monitor-command: info status (prelaunch)', write: cmd('human-monitor-command', { 'command-line': 'info status' }) },
  { name: 'stop in prelaunch', write: cmd('stop') },
  { name: 'query-status (still prelaunch)', write: cmd('query-status') },
  { name: 'system_reset in prelaunch', write: cmd('system_reset'), then: waitEvent('RESET') },
  { name: 'system_powerdown in prelaunch', write: cmd('system_powerdown'), then: waitEvent('POWERDOWN') },
  { name: 'query-migrate in prelaunch', write: cmd('query-migrate') },
  { name: 'cont', write: cmd('cont'), then: async (m, q) => (await q.event('RESUME'), await m.waitOutput(/^ready\n$/)) },
  { name: 'query-status (running)', write: cmd('query-status') },
  { name: 'human-monitor-command: info status (running)', write: cmd('human-monitor-command', { 'command-line': 'info status' }) },
  ...REFUSALS,
];

describe('QMP: virtus answers as QEMU 7.2 does', { timeout: 5 * 60_000 }, () => {
  for (const [what, extra, steps] of [['a running machine', [], RUNNING], ['a machine started with -S (prelaunch)', ['-S'], PRELAUNCH]] as const) {
    it(`the same replies and events for ${what}`, async () => {
      const qemu = await runScript('qemu', IDLE, [...extra], steps);
      const virtus = await runScript('virtus', IDLE, [...extra], steps);
      checkTimestamps(virtus);
      assert.deepEqual(comparable(virtus), comparable(qemu));
      // What the comparison stands on: the events the script causes are there.
      assert.deepEqual(qemu.events.map((e) => e.event), extra.length
        ? ['RESET', 'POWERDOWN', 'RESUME', 'SHUTDOWN']
        : ['STOP', 'RESUME', 'RESET', 'POWERDOWN', 'STOP', 'RESUME', 'SHUTDOWN']);
    });
  }

  it("reports the guest's own reset and poweroff as QEMU does, and says SHUTDOWN where QEMU 7.2 exits without a word", async () => {
    // reboot.S resets the board through the test finisher once, then powers it off.
    const script: Step[] = [
      { name: 'qmp_capabilities', write: cmd('qmp_capabilities') },
      { name: 'cont', write: cmd('cont') },
    ];
    const qemu = await runScript('qemu', REBOOT, ['-S'], script);
    const virtus = await runScript('virtus', REBOOT, ['-S'], script);
    assert.equal(virtus.output, 'boot 1\nboot 2\n');
    // QEMU 7.2's test finisher ends the process with exit() and tells QMP clients nothing;
    // virtus sends SHUTDOWN with the guest's cause (ShutdownCause, qapi/run-state.json).
    const last = virtus.events.pop();
    assert.deepEqual({ ...last, timestamp: shape(last!.timestamp) }, {
      event: 'SHUTDOWN', data: { guest: true, reason: 'guest-shutdown' }, timestamp: { microseconds: 'number', seconds: 'number' }, afterReplies: 2,
    });
    assert.deepEqual(comparable(virtus), comparable(qemu));
    assert.deepEqual(qemu.events.map((e) => [e.event, e.data]), [['RESUME', undefined], ['RESET', { guest: true, reason: 'guest-reset' }]]);
  });

  it('serves connections side by side, and closes them all when the machine ends', async () => {
    const m = start('virtus', IDLE);
    const [a, b] = [await m.connect(), await m.connect()];
    for (const q of [a, b]) assert.ok('QMP' in (await q.greeting()));
    assert.deepEqual(await b.execute('query-status'), { error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" } });
    assert.deepEqual(await a.execute('qmp_capabilities'), { return: {} });
    assert.deepEqual(await b.execute('qmp_capabilities'), { return: {} });
    // Events go to every negotiated connection.
    assert.deepEqual(await a.execute('stop'), { return: {} });
    assert.equal((await b.event('STOP')).event, 'STOP');
    assert.deepEqual(await b.execute('quit'), { return: {} });
    await Promise.all([a.closed(), b.closed()]);
    assert.equal((await a.event('SHUTDOWN')).event, 'SHUTDOWN');
    assert.equal(await m.exited, 0);
  });
});
