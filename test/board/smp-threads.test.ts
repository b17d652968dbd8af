/**
 * Harts in host threads (docs/architecture.md, "Harts and their turns"): the default guest
 * with `--smp 2`, as a user would run it, with hart 1 in a worker thread of its own. Debian's
 * kernel counts and lists both harts and takes cpu1 offline and back (SBI HSM across threads);
 * an idle guest costs the host little CPU (a hart in WFI sleeps on Atomics.wait, the machine's
 * thread on the event loop; read from the process's own /proc/PID/stat); two counters pinned
 * to the two CPUs are saved mid-way (every hart stopped at an instruction boundary) and go on
 * counting from the saved values after a restore, again in threads. A guest reboot restarts
 * every engine (the threads stay) and brings hart 1 up again.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ensureDefaultGuest, stderrProgress } from '../../src/host/node/guest/index.ts';
import { Guest } from '../support/guest.ts';
import { QmpClient } from '../support/qmp.ts';

const dir = mkdtempSync(join(tmpdir(), 'virtus-smp-threads-'));
before(async () => {
  await ensureDefaultGuest({ progress: stderrProgress() });
});
after(() => {
  Guest.killAll();
  rmSync(dir, { recursive: true, force: true });
});

/** CPU seconds (user + system) the process has used, from /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Reads the two counters the guest keeps in /tmp/c0 and /tmp/c1. */
async function counters(m: Guest): Promise<[number, number]> {
  const out = await m.run('cat /tmp/c0 /tmp/c1');
  const n = out.trim().split(/\s+/).map(Number);
  assert.equal(n.length, 2, out);
  assert.ok(n.every((x) => Number.isInteger(x) && x > 0), out);
  return n as [number, number];
}

test('linux on 2 harts in threads: nproc, cpuinfo, hotplug, an idle guest, a snapshot of counters on both harts', { timeout: 20 * 60_000 }, async () => {
  const snap = join(dir, 'm.snap');
  const a = Guest.virtus(['--smp', '2', '--stats', '--qmp', `unix:${join(dir, 'a.qmp')},server=on,wait=off`, '--snapshot-on-exit', snap]);
  await a.shell();
  assert.match(a.output, /smp: Brought up 1 node, 2 CPUs/);
  assert.equal((await a.run('nproc')).trim(), '2');
  const cpuinfo = await a.run('cat /proc/cpuinfo');
  assert.deepEqual([...cpuinfo.matchAll(/^hart\s*: (\d+)$/gm)].map((x) => Number(x[1])).sort(), [0, 1], cpuinfo);

  // cpu1 offline (hart_stop in its thread; the kernel watches it with hart_get_status) and back.
  await a.run('echo 0 > /sys/devices/system/cpu/cpu1/online');
  assert.equal((await a.run('cat /sys/devices/system/cpu/online')).trim(), '0');
  await a.run('echo 1 > /sys/devices/system/cpu/cpu1/online');
  assert.equal((await a.run('cat /sys/devices/system/cpu/online')).trim(), '0-1');
  assert.equal((await a.run('nproc')).trim(), '2');

  // Idle at the prompt: the process may wake for timers, but must not spin (a spinning hart
  // or device thread costs a whole core).
  await a.run('sleep 1');
  const c0 = cpuSeconds(a.pid);
  const t0 = performance.now();
  await a.run('sleep 4');
  const share = (cpuSeconds(a.pid) - c0) / ((performance.now() - t0) / 1000);
  assert.ok(share < 0.2, `an idle 2-hart guest used ${(share * 100).toFixed(1)} % of a core`);

  // A counter on each hart, saved while they count.
  // (Written aside and renamed, so that a read never sees a file half written.)
  await a.run('for c in 0 1; do taskset -c $c sh -c "i=0; while :; do i=\\$((i+1)); echo \\$i > /tmp/c$c.new; mv /tmp/c$c.new /tmp/c$c; done" & done');
  const early = await counters(a);
  const later = await counters(a);
  assert.ok(later[0] > early[0] && later[1] > early[1], `both counters run: ${early} then ${later}`);
  const qa = await QmpClient.connect(join(dir, 'a.qmp'));
  await qa.execute('qmp_capabilities');
  await qa.execute('quit');
  assert.equal(await a.exited(), 0);
  assert.ok(existsSync(snap), a.stderr);
  assert.match(a.stderr, /^ {2}threads of their own +1$/m, 'hart 1 ran in a thread of its own');
  assert.match(a.stderr, /^ {2}hart1 instructions +[1-9]\d*$/m);
  assert.match(a.stderr, /^ {2}hsm\.hart_start +2$/m, 'hart 1 at boot, and again after hotplug');
  assert.match(a.stderr, /^ {2}hsm\.hart_stop +1$/m);

  const b = Guest.virtus(['--restore', snap, '--stats']);
  const resumed = await counters(b);
  assert.ok(resumed[0] >= later[0] && resumed[1] >= later[1], `the counters go on from the snapshot: ${later} then ${resumed}`);
  const after = await counters(b);
  assert.ok(after[0] > resumed[0] && after[1] > resumed[1], `both counters run after the restore: ${resumed} then ${after}`);
  assert.equal((await b.run('nproc')).trim(), '2');
  assert.equal(await b.powerOff(), 0);
  await b.waitForStderr(/^traps: \d+$/m);
  assert.match(b.stderr, /^ {2}threads of their own +1$/m, 'the restored machine runs hart 1 in a thread too');
});

test('a guest reboot with harts in threads: the engines start afresh and the second boot brings hart 1 up again', { timeout: 20 * 60_000 }, async () => {
  const m = Guest.virtus(['--smp', '2', '--stats']);
  await m.shell();
  m.send('reboot');
  await m.waitFor(/reboot: Restarting system/);
  const first = m.output.length;
  await m.shell();
  assert.match(m.output.slice(first), /smp: Brought up 1 node, 2 CPUs/, 'the second boot');
  assert.equal((await m.run('nproc')).trim(), '2');
  assert.equal(await m.powerOff(), 0);
  await m.waitForStderr(/^traps: \d+$/m);
  assert.match(m.stderr, /^ {2}threads of their own +1$/m);
  assert.match(m.stderr, /^ {2}hsm\.hart_start +2$/m, 'hart 1 started once per boot');
});
