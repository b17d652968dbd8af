/**
 * Snapshots cross between the CLI and the web console, deterministic ones included: a machine
 * saved by `virtus run --deterministic` loads in Chromium's tab and prints exactly what an
 * uninterrupted CLI run prints from the same instruction on; one saved in a tab loads in
 * `virtus run --restore` and does the same. The guest (test/web/guest/ticks.c) prints, line by
 * line, what would differ if the hosts built the machine differently: the time, the RTC, bytes
 * from the virtio-rng (its slot and its seeding) and a hash over memory it keeps rewriting.
 *
 * The tab that loads the CLI's snapshot was started without --deterministic, running another
 * kernel: a restore takes the whole machine, deterministic mode included, from the snapshot.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { NodeVmHost } from '../../src/host/node/vm-host.ts';
import { restoreVm } from '../../src/vmm/create.ts';
import { buildGuest, GUEST_SRC, runVirtus } from '../support/toolchain.ts';
import { launchChromium, startServer } from './browser.ts';
import { waitInPage } from './wait.ts';

const WEB_GUEST = join(GUEST_SRC, '../web/guest');
const TICKS = buildGuest('web-ticks', [join(WEB_GUEST, 'ticks-start.S'), join(WEB_GUEST, 'ticks.c')], { ldscript: join(WEB_GUEST, 'echo.ld') });
const ECHO = buildGuest('web-echo', [join(WEB_GUEST, 'echo.S')], { ldscript: join(WEB_GUEST, 'echo.ld') });

const dir = mkdtempSync(join(tmpdir(), 'virtus-web-cli-'));

/** `virtus run --deterministic` on the ticks guest with `extra`; stdout and the exit code. */
function cli(extra: string[], expectStatus: number): string {
  const r = runVirtus(['run', ...extra], { input: '' });
  assert.equal(r.status, expectStatus, `virtus run ${extra.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Console text as a terminal shows it: lines without their carriage returns and trailing blanks. */
function screenOf(text: string): string {
  return text.replace(/\r\n/g, '\n').split('\n').map((l) => l.trimEnd()).join('\n').trimEnd();
}

/** The instruction a snapshot was taken at (the machine restored here, in Node, and asked). */
async function instretOf(bytes: Uint8Array): Promise<number> {
  const names = { disk: '--drive', share: '--share', nic: '--nic', memory: '--memory' };
  const vm = await restoreVm(bytes, 'tab.snap', { disks: [], shares: [], nics: [], engine: 'interp' }, names, new NodeVmHost({ warn: () => {} }));
  const n = (await vm.handle({ type: 'query-status' })).instret;
  await vm.handle({ type: 'quit' });
  return n;
}

describe('deterministic snapshots between the CLI and the web console', { timeout: 10 * 60_000 }, () => {
  let browser: Browser;
  /** The uninterrupted run, and how many instructions it took. */
  let full: string;
  let total: number;

  before(async () => {
    const r = runVirtus(['run', '--deterministic', '--kernel', TICKS, '--stats'], { input: '' });
    assert.equal(r.status, 0, r.stderr);
    full = r.stdout;
    total = Number(/^instructions: (\d+)$/m.exec(r.stderr)?.[1]);
    assert.match(full, /^ticks: start\r\ntick 00 .*\r\n(tick \d\d .*\r\n){39}ticks: done\r\n$/);
    assert.ok(total > 1e6, r.stderr);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A page of `virtus web ARGS` (with `query` in its URL), tall enough to show the whole run. */
  async function tab(args: string[], query = ''): Promise<{ page: Page; stop: () => Promise<void> }> {
    const server = await startServer(args);
    const page = await browser.newPage({ viewport: { width: 1400, height: 1400 } });
    await page.goto(server.url + query);
    return { page, stop: async () => (await page.close(), await server.stop()) };
  }

  // With a disk and virtio-console too, the board's slots fill alike on both hosts (the
  // disk, the console, then the rng the guest reads).
  for (const devices of [[], ['--drive', 'file=DISK', '--console', 'virtio']]) {
    it(`a snapshot made by \`virtus run\` continues in the tab with the output of an uninterrupted run${devices.length ? ' (with a disk and virtio-console)' : ''}`, async () => {
      const disk = join(dir, 'disk.img');
      writeFileSync(disk, new Uint8Array(1 << 20).fill(0x5a));
      const flags = devices.map((f) => f.replace('DISK', disk));
      // Somewhere in the middle of a line, late enough that the rest fits on the tab's screen.
      const at = Math.floor(total * 0.7) + 12345;
      const snap = join(dir, 'cli.snap');
      // The devices move the rng to a lower slot: the guest's probe takes longer.
      const whole = flags.length ? cli(['--deterministic', '--kernel', TICKS, ...flags], 0) : full;
      const head = cli(['--deterministic', '--kernel', TICKS, ...flags, '--max-insns', String(at), '--snapshot-on-exit', snap], 124);
      assert.ok(whole.startsWith(head) && head.length < whole.length, 'the limited run printed the start of the full run');
      const bytes = readFileSync(snap);

      const { page, stop } = await tab(['--kernel', ECHO, ...flags]);
      try {
        await waitInPage(page, 'the echo guest', () => /echo\$ $/m.test(window.virtus?.screenText() ?? ''), null);
        await page.evaluate((b) => window.virtus.loadSnapshot(new Uint8Array(b)), [...bytes]);
        // The terminal draws what it is given a little later: the note of the machine's end
        // comes after everything the guest printed.
        const screen = await waitInPage(page, 'the restored machine to power off', () => {
          const text = window.virtus.screenText();
          return window.virtus.state() === 'stopped' && /^\[virtus\] .*Reset powers it on again\.$/m.test(text) ? text : null;
        }, null, 5 * 60_000);
        const lines = screen.split('\n');
        const loaded = lines.findIndex((l) => l.startsWith('[virtus] snapshot loaded'));
        assert.ok(loaded >= 0, `the load is noted on the screen:\n${screen}`);
        const rest = lines.slice(loaded + 1);
        const end = rest.findIndex((l) => l.startsWith('[virtus] '));
        assert.match(rest[end] ?? '', /poweroff, code 0/, `the guest powered the machine off:\n${screen}`);
        assert.equal(screenOf(rest.slice(0, end).join('\n')), screenOf(whole.slice(head.length)));
      } finally {
        await stop();
      }
    });
  }

  it('a snapshot saved in the tab continues in `virtus run --restore` with the output of an uninterrupted run', async () => {
    // The interpreter runs the tab's guest slowly enough to pause it halfway (and a
    // deterministic run is the same on either engine).
    const { page, stop } = await tab(['--deterministic', '--kernel', TICKS], '?engine=interp');
    let bytes: Uint8Array;
    let shown: string;
    try {
      await waitInPage(page, 'a few ticks', () => /^tick 03 /m.test(window.virtus?.screenText() ?? ''), null, 5 * 60_000);
      await page.evaluate(() => window.virtus.pause());
      await waitInPage(page, 'the paused machine', () => window.virtus.state() === 'paused', null);
      bytes = new Uint8Array(await page.evaluate(async () => [...(await window.virtus.saveSnapshot())]));
      // Once the save's note is drawn, so is everything the guest printed before it.
      shown = await waitInPage(page, 'the note of the save', () => {
        const text = window.virtus.screenText();
        return /^\[virtus\] snapshot saved/m.test(text) ? text : null;
      }, null);
    } finally {
      await stop();
    }
    const at = await instretOf(bytes);
    assert.ok(at < total, `the tab was paused before the guest finished (at ${at} of ${total})`);
    const snap = join(dir, 'tab.snap');
    writeFileSync(snap, bytes);
    // What the CLI prints up to that instruction is what the tab showed.
    const head = cli(['--deterministic', '--kernel', TICKS, '--max-insns', String(at)], 124);
    const tabText = screenOf(shown.split('\n').filter((l) => !l.startsWith('[virtus] ')).join('\n'));
    assert.equal(tabText, screenOf(head));
    // Continued to the end, and to an instruction short of it.
    assert.equal(head + cli(['--restore', snap], 0), full);
    const limit = Math.floor((at + total) / 2);
    assert.equal(head + cli(['--restore', snap, '--max-insns', String(limit)], 124), cli(['--deterministic', '--kernel', TICKS, '--max-insns', String(limit)], 124));
  });
});
