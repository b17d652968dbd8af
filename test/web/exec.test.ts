/**
 * The exec page (/exec): Debian's riscv64 busybox shell in the tab with no kernel, the process
 * VM in a Web Worker. Commands typed in the terminal give what the same commands give under
 * qemu-riscv64 on the same busybox; a file put in the tab hashes as Node hashes it; Ctrl-C
 * interrupts; and a shell waiting for a key parks its worker: no scheduler turn runs and the
 * browser's processes use next to no CPU (read from /proc) until a key arrives.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { cacheRoot, ensureDefaultGuest, stderrProgress } from '../../src/host/node/guest/index.ts';
import { runQemuUser } from '../support/exec.ts';
import { launchChromium, startServer, type WebServer } from './browser.ts';

/** Waits until `fn` (polled in the page) is truthy; a wait that runs out fails with the screen. */
async function waitExec<A, R>(page: Page, what: string, fn: (arg: A) => R, arg: A, timeout = 60_000): Promise<NonNullable<R>> {
  try {
    const h = await page.waitForFunction(fn as (arg: unknown) => R, arg as unknown, { timeout, polling: 100 });
    return (await h.jsonValue()) as NonNullable<R>;
  } catch (e) {
    const screen = await page.evaluate(() => window.virtusExec?.screenText() ?? '(no window.virtusExec)').catch(() => '(page gone)');
    throw new Error(`${what}: ${(e as Error).message.split('\n')[0]}\n--- screen ---\n${screen}`);
  }
}

/** CPU time (user + system, in clock ticks) of every process descending from this one: the browser's. */
function browserTicks(): number {
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      // proc(5): fields after the command's closing parenthesis; ppid is field 4, utime 14, stime 15.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(f[1]));
      ticks.set(Number(d), Number(f[11]) + Number(f[12]));
    } catch {
      // gone meanwhile
    }
  }
  const mine = (pid: number): boolean => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) if (p === process.pid) return true;
    return false;
  };
  let sum = 0;
  for (const [pid, t] of ticks) if (mine(pid)) sum += t;
  return sum;
}

/** In the tab, `bb APPLET ...` runs the applet by its link in /bin (see referencePipeline). */
const BB = 'bb() { "$@"; }';

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

describe('the exec page: busybox in the tab without a kernel', { timeout: 5 * 60_000 }, () => {
  let server: WebServer;
  let browser: Browser;
  let page: Page;
  let scratch = '';
  let busybox = '';
  let seq = 0;
  const errors: string[] = [];

  before(async () => {
    const guest = await ensureDefaultGuest({ progress: stderrProgress() });
    scratch = mkdtempSync(join(tmpdir(), 'virtus-web-exec-'));
    const r = spawnSync('dpkg-deb', ['-x', join(cacheRoot(), 'debs', guest.manifest.packages.busybox.file), scratch], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    busybox = join(scratch, 'usr/bin/busybox');
    server = await startServer();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(new URL('/exec', server.url).href);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  /**
   * Types `clear; CMD; echo MARKER` and returns what CMD printed: the screen is cleared first,
   * so the output is the lines above the marker (the typed line's echo is gone with the clear).
   */
  async function shell(cmd: string): Promise<string> {
    const n = ++seq;
    // The marker as typed ("@@""7@@") differs from the marker printed (@@7@@).
    await page.evaluate((t) => window.virtusExec.type(t), `clear; ${cmd}; echo "@@""${n}@@"\n`);
    const screen = await waitExec(page, `the output of ${cmd}`, (m) => {
      const s = window.virtusExec.screenText();
      return s.split('\n').includes(m) ? s : null;
    }, `@@${n}@@`);
    const lines = screen.split('\n');
    return lines.slice(0, lines.indexOf(`@@${n}@@`)).join('\n') + '\n';
  }

  /** What `sh -c CMD` prints under qemu-riscv64 with the same busybox (builtins only: it cannot execute itself there). */
  function referenceSh(cmd: string): string {
    const r = runQemuUser(busybox, ['sh', '-c', cmd], { env: { PATH: '/nonexistent-virtus-test' } });
    assert.equal(r.stderr, '');
    return r.stdout;
  }

  /**
   * What a pipeline of applets prints when each stage is its own qemu-riscv64 run of the same
   * busybox, joined by the host's shell: `bb APPLET ...` names a stage (in the tab, `bb` is a
   * function that runs its arguments; see BB).
   */
  function referencePipeline(cmd: string): string {
    const dir = mkdtempSync(join(tmpdir(), 'virtus-web-exec-ref-'));
    try {
      const r = spawnSync('bash', ['-c', `bb() { qemu-riscv64 ${busybox} "$@"; }; ${cmd}`], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.stderr, '');
      return r.stdout;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('starts an interactive shell (a terminal, job control, a prompt) from the served busybox', async () => {
    await waitExec(page, 'the prompt', () => /^~ \$ $/m.test(window.virtusExec?.screenText() ?? ''), null);
    const text = await page.evaluate(() => window.virtusExec.screenText());
    assert.match(text, /BusyBox v1\.\d+.* built-in shell \(ash\)/);
    assert.doesNotMatch(text, /can't|job control turned off/);
    assert.deepEqual(errors, []);
  });

  it('runs a pipeline through sed as qemu-riscv64 does', async () => {
    await shell(BB);
    const cmd = 'bb echo hello | bb sed s/l/L/g; bb echo hello | bb sed s/l/L/';
    const got = await shell(cmd);
    assert.equal(got, referencePipeline(cmd));
    assert.equal(got, 'heLLo\nheLlo\n');
  });

  it('writes, reads and lists files in /tmp', async () => {
    const got = await shell('cd /tmp && echo abc > f && cat f && ls -l && pwd');
    assert.match(got, /^abc\ntotal \d+\n-rw-r--r-- +1 user +user +4 \w{3} +\d+ \d\d:\d\d f\n\/tmp\n$/);
  });

  it('sorts and counts through a pipeline as qemu-riscv64 does', async () => {
    const cmd = "bb printf 'pear 3\\napple 10\\nfig 7\\napple 2\\n' | bb sort -k2,2n | bb tee sorted | bb wc -l; bb cat sorted | bb cut -d ' ' -f1 | bb uniq -c";
    const got = await shell(cmd);
    assert.equal(got, referencePipeline(cmd));
    assert.match(got, /^4\n/);
  });

  it('hashes a file put in the tab as Node hashes it', async () => {
    const blob = randomBytes(300_000);
    await page.evaluate((b) => window.virtusExec.putFile('blob.bin', new Uint8Array(b)), [...blob]);
    const got = await shell('sha256sum ~/blob.bin; wc -c < ~/blob.bin');
    assert.equal(got, `${createHash('sha256').update(blob).digest('hex')}  /home/user/blob.bin\n${blob.length}\n`);
  });

  it('gives exit statuses', async () => {
    const cmd = 'false; echo $?; (exit 7); echo $?; true; echo $?';
    assert.equal(await shell(cmd), referenceSh(cmd));
  });

  it('Ctrl-C interrupts a command waiting for input, and the shell goes on', async () => {
    await page.evaluate(() => window.virtusExec.type('clear; cat\n'));
    await waitExec(page, 'cat running', async () => (await window.virtusExec.status()).processes === 2, null);
    await page.evaluate(() => window.virtusExec.type('line for cat\n'));
    await waitExec(page, 'cat echoing', () => window.virtusExec.screenText().split('\n').filter((l) => l === 'line for cat').length === 2, null);
    await page.evaluate(() => window.virtusExec.type('\x03'));
    await waitExec(page, 'the prompt again', () => /^\^C\n.* \$ $/m.test(window.virtusExec.screenText()), null);
    // As after a foreground job killed by SIGINT on Linux: 128 + 2.
    await page.evaluate(() => window.virtusExec.type('echo "status $?"\n'));
    await waitExec(page, 'the status', () => window.virtusExec.screenText().split('\n').includes('status 130'), null);
    assert.equal(await shell('echo still here'), 'still here\n');
  });

  it('edits lines with the keyboard: Backspace, history with the Up key (busybox\'s line editor in raw mode)', async () => {
    await shell('true');
    await page.click('#terminal');
    await page.keyboard.type('echo "typed @@""linx');
    await page.keyboard.press('Backspace');
    await page.keyboard.type('e"');
    await page.keyboard.press('Enter');
    await waitExec(page, 'the edited line', () => window.virtusExec.screenText().split('\n').includes('typed @@line'), null);
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('Enter');
    await waitExec(page, 'the recalled line', () => window.virtusExec.screenText().split('\n').filter((l) => l === 'typed @@line').length === 2, null);
  });

  it('tells the guest the terminal\'s size, and a new one after the window changes', async () => {
    const size = async () => page.evaluate(() => window.virtusExec.size());
    const first = await size();
    assert.equal(await shell('stty size'), `${first.rows} ${first.cols}\n`);
    await page.setViewportSize({ width: 800, height: 600 });
    const smaller = await waitExec(page, 'a smaller terminal', (c) => {
      const s = window.virtusExec.size();
      return s.cols < c ? s : null;
    }, first.cols);
    assert.equal(await shell('stty size'), `${smaller.rows} ${smaller.cols}\n`);
  });

  it('parks the worker while the shell waits: no turns, next to no CPU, until a key', async () => {
    await shell('true');
    await waitExec(page, 'a parked loop', async () => (await window.virtusExec.status()).loop === 'input', null);
    const before = await page.evaluate(() => window.virtusExec.status());
    const t0 = browserTicks();
    const start = Date.now();
    // A window to measure over (nothing is awaited from the guest here: it must do nothing).
    await new Promise((r) => setTimeout(r, 2000));
    const cpu = (browserTicks() - t0) / CLK_TCK;
    const wall = (Date.now() - start) / 1000;
    const afterIdle = await page.evaluate(() => window.virtusExec.status());
    console.log(`# idle: ${cpu.toFixed(2)} s of browser CPU in ${wall.toFixed(1)} s, ${afterIdle.turns - before.turns} turns`);
    // Measured here: about 0.1-0.2 s idle (the page, its compositor, the cursor blinking);
    // a worker spinning instead of parking took 2.2 s.
    assert.ok(cpu < 0.3 * wall, `the browser used ${cpu.toFixed(2)} s of CPU in ${wall.toFixed(1)} s idle`);
    assert.equal(afterIdle.turns, before.turns, 'no scheduler turn ran while the shell waited');
    assert.equal(afterIdle.loop, 'input');
    // A sleeping shell parks on a timer instead, and wakes on it.
    await page.evaluate(() => window.virtusExec.type('clear; sleep 1; echo "@@""slept"\n'));
    await waitExec(page, 'a timer park', async () => (await window.virtusExec.status()).loop === 'timer', null);
    await waitExec(page, 'the sleep ending', () => window.virtusExec.screenText().split('\n').includes('@@slept'), null);
    assert.ok((await page.evaluate(() => window.virtusExec.status())).turns > afterIdle.turns);
  });
});
