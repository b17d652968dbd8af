/**
 * Saving and moving a machine whose 4 harts all compute (issue #20): the default guest with
 * `--smp 4` on the translator (harts 1-3 in threads of their own) runs 4 processes of the
 * CPU-bound program (test/guest/linux/cpu.c, from a raw disk) twice; the uninterrupted run is
 * `qemu-riscv64` running the same binary, whose checksum each process must print:
 *
 * 1. saved once all 4 have run a while (`savevm`, then `quit`), restored in a new process:
 *    they finish there, with the uninterrupted checksums, and every CPU's user time grows (the
 *    kernel spread them over the 4 harts);
 * 2. started again on that restored machine and live-migrated mid-run to a third process
 *    (`--incoming`): they finish on the target, with the same checksums, on all 4 harts.
 *
 * The processes print their checksums to the console when they end, so a source that printed
 * none after the batch began was stopped mid-run. One boot serves both.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ensureDefaultGuest, stderrProgress } from '../../src/host/node/guest/index.ts';
import { Guest } from '../support/guest.ts';
import { freePort, migratedLine, monitor } from '../support/migration.ts';
import { buildGuest, requireTool } from '../support/toolchain.ts';

/** Repetitions of cpu.c's loop per process: several seconds of work for 4 harts on a 2-core host. */
const REPS = 300;
const PROCESSES = 4;
/**
 * User time (in USER_HZ ticks) each process has had before the batch counts as running: each
 * was scheduled and computes. Small beside the ~350 ticks a process takes here, so the save and
 * the move come early in the work: ticks are guest time, which passes whether or not the host
 * runs the hart's thread, so they say little about how far a process has come.
 */
const RUNNING_TICKS = 20;
/** User time each CPU gains while a batch runs, at least (a CPU that computes nothing gains none). */
const BUSY_TICKS = 50;

const dir = mkdtempSync(join(tmpdir(), 'virtus-smp-snapshot-'));
before(async () => {
  await ensureDefaultGuest({ progress: stderrProgress() });
});
after(() => {
  Guest.killAll();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The checksums printed in `text`. Not anchored to lines: a process that ends while the shell
 * echoes a command line prints its line in the middle of the echo (one write, never split).
 */
function checksums(text: string): string[] {
  return [...text.matchAll(/cpu checksum=(0x[0-9a-f]{16})\n/g)].map((m) => m[1]!);
}

/** Each CPU's user time (user and nice) in ticks, from /proc/stat. */
async function userTicks(g: Guest): Promise<number[]> {
  const out = await g.run("grep '^cpu[0-9]' /proc/stat");
  const ticks = [...out.matchAll(/^cpu(\d+) (\d+) (\d+)/gm)].map((m) => [Number(m[1]), Number(m[2]) + Number(m[3])] as const);
  assert.deepEqual(ticks.map(([c]) => c), [0, 1, 2, 3], out);
  return ticks.map(([, t]) => t);
}

/**
 * The script that starts a batch (sourced, so the processes are the shell's jobs): the
 * processes in the background, their pids in /tmp/pids, niced so that the shell answers while
 * they compute; then it waits until each has had RUNNING_TICKS of user time (utime, field 14
 * of /proc/PID/stat, read by the shell itself). Typed once before the work begins: every byte
 * typed or echoed later is a console access competing with 4 busy harts.
 */
const START = `: > /tmp/pids; for i in $(seq ${PROCESSES}); do /tmp/cpu ${REPS} & echo $! >> /tmp/pids; done; ` +
  'renice -n 19 -p $(cat /tmp/pids) >/dev/null; for p in $(cat /tmp/pids); do t=0; ' +
  `while [ "$t" != gone ] && [ $t -lt ${RUNNING_TICKS} ]; do sleep 0.1; t=gone; read -r _ _ _ _ _ _ _ _ _ _ _ _ _ t _ < /proc/$p/stat; done; ` +
  'echo "running $p $t"; done';

/**
 * Starts a batch (START) and returns once each process has had RUNNING_TICKS of user time,
 * with the console's length at the start.
 */
async function startBatch(g: Guest): Promise<number> {
  const from = g.output.length;
  const out = await g.run('. /tmp/start');
  const running = [...out.matchAll(/^running \d+ (\S+)$/gm)].map((m) => m[1]!);
  assert.equal(running.length, PROCESSES, out);
  assert.ok(running.every((t) => /^\d+$/.test(t)), `every process still runs:\n${out}`);
  assert.deepEqual(checksums(g.output.slice(from)), [], 'no process ended this early');
  return from;
}

/** Waits for the shell's background processes; their checksums, printed since `from`. */
async function finishBatch(g: Guest, from: number): Promise<string[]> {
  await g.run('wait', 5 * 60_000);
  return checksums(g.output.slice(from));
}

/** Asserts every CPU's user time grew by BUSY_TICKS or more between two readings (userTicks). */
function assertAllBusy(before: number[], after: number[], what: string): void {
  const grown = after.map((t, i) => t - before[i]!);
  assert.ok(grown.every((d) => d >= BUSY_TICKS), `${what}: every CPU's user time grows by ${BUSY_TICKS} ticks or more, not ${grown.join(', ')}`);
}

test('4 harts running 4 CPU-bound processes: saved and restored, then live-migrated, they end as an uninterrupted run does', { timeout: 15 * 60_000 }, async () => {
  requireTool('qemu-riscv64');
  const elf = buildGuest('linux-cpu', ['linux/cpu.c'], { cc: 'riscv64-linux-gnu-gcc', bare: false, cflags: ['-static'] });
  const ref = spawnSync('qemu-riscv64', [elf, String(REPS)], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(ref.status, 0, ref.stderr);
  const [expected] = checksums(ref.stdout);
  assert.ok(expected, ref.stdout);
  const all = Array<string>(PROCESSES).fill(expected);

  const bin = readFileSync(elf);
  const disk = join(dir, 'cpu.img');
  writeFileSync(disk, Buffer.concat([bin, Buffer.alloc((512 - (bin.length % 512)) % 512)]));
  const drive = ['--drive', `file=${disk},format=raw,readonly=on`];
  const snap = join(dir, 'm.snap');
  const monA = join(dir, 'a.sock');
  const monB = join(dir, 'b.sock');

  const a = Guest.virtus(['--smp', '4', '--stats', ...drive, '--monitor', `unix:${monA}`]);
  await a.shell();
  assert.match(a.output, /smp: Brought up 1 node, 4 CPUs/);
  await a.run(`echo 1 > /proc/sys/kernel/printk; cat /dev/vda > /tmp/cpu && chmod +x /tmp/cpu; echo '${START}' > /tmp/start`);

  // 1. Saved mid-run, the machine quit, restored in a new process.
  const second = await startBatch(a);
  const [saved, quit] = await monitor(monA, `savevm ${snap}`, 'quit');
  assert.equal(saved!.ok, true, JSON.stringify(saved));
  assert.equal(quit!.ok, true, JSON.stringify(quit));
  assert.equal(await a.exited(), 0, a.stderr);
  assert.deepEqual(checksums(a.output.slice(second)), [], 'the machine was saved before any process ended');
  await a.waitForStderr(/^traps: \d+$/m);
  assert.match(a.stderr, /^ {2}threads of their own +3$/m, 'harts 1-3 ran in threads of their own');
  assert.ok(existsSync(snap));

  const b = Guest.virtus(['--restore', snap, '--stats', ...drive, '--monitor', `unix:${monB}`]);
  const t1 = await userTicks(b);
  assert.deepEqual(await finishBatch(b, 0), all, `the restored processes end with the uninterrupted checksums\n${b.output.slice(-2000)}`);
  assertAllBusy(t1, await userTicks(b), 'after the restore');

  // 2. Started again on the restored machine, live-migrated mid-run.
  const port = await freePort();
  const c = Guest.virtus(['--incoming', `tcp:127.0.0.1:${port}`, '--stats', ...drive]);
  await c.waitForStderr(/waiting for a machine/);
  const third = await startBatch(b);
  const [answer] = await monitor(monB, `migrate tcp:127.0.0.1:${port}`);
  assert.deepEqual(answer, { ok: true, status: 'active' });
  assert.equal(await b.exited(5 * 60_000), 0, b.stderr);
  const moved = migratedLine(b.stderr);
  if (!moved) assert.fail(`the migration did not complete: ${b.stderr}`);
  process.stderr.write(`# smp 4: ${moved.line}\n`);
  assert.deepEqual(checksums(b.output.slice(third)), [], 'the source stopped before any process ended');
  await b.waitForStderr(/^traps: \d+$/m);
  assert.match(b.stderr, /^ {2}threads of their own +3$/m, 'the restored machine ran harts 1-3 in threads');
  await c.waitForStderr(/machine received/);
  const t2 = await userTicks(c);
  assert.deepEqual(await finishBatch(c, 0), all, `the migrated processes end with the uninterrupted checksums\n${c.output.slice(-2000)}`);
  assertAllBusy(t2, await userTicks(c), 'after the migration');
  assert.equal(await c.powerOff(), 0);
  await c.waitForStderr(/^traps: \d+$/m);
  assert.match(c.stderr, /^ {2}threads of their own +3$/m, 'the target ran harts 1-3 in threads');
});
