/**
 * End to end: `virtus web` serves the page, Debian's Chromium (headless) opens it, the default
 * guest boots inside the tab's worker to a shell, `uname -a` typed into the terminal answers
 * on the screen, and the counters panel shows hypercalls and device accesses; a snapshot saved
 * and loaded back restores a file the guest had removed meanwhile, and a corrupt one is
 * refused while the guest runs on. A screenshot is
 * left in build/artifacts/. Every wait polls a condition in the page; none sleeps a fixed time.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { isaExtensions } from '../../src/cpu/isa-string.ts';
import { encodeSnapshot } from '../../src/machine/snapshot.ts';
import { VirtBoard } from '../../src/machine/virt.ts';
import { MemoryHostFile } from '../../src/storage/host-file.ts';
import { RawBackend } from '../../src/storage/raw.ts';
import { buildBoard } from '../../src/vmm/build.ts';
import { shapeOf } from '../../src/vmm/shape.ts';
import { parseMachineSpec } from '../../src/vmm/spec.ts';
import { BUILD } from '../support/toolchain.ts';
import { launchChromium, startServer, type WebServer } from './browser.ts';
import { decodePng } from './png.ts';
import { waitInPage } from './wait.ts';

const ARTIFACTS = join(BUILD, 'artifacts');

/**
 * Debian's busybox uses floating point from its first instructions. Until the hart reports F
 * and D, /init dies with SIGILL, so the shell steps are marked TODO (run, reported, not
 * counted as failures); they become required by themselves once misa has F and D.
 */
function needsFloatingPoint(): string | false {
  const ext = isaExtensions(new VirtBoard({ ramSize: 1 << 20, console: () => {} }).machine.harts[0]!);
  return ext.includes('f') && ext.includes('d') ? false : "the hart does not report F and D yet: busybox's /init dies with SIGILL";
}
const SHELL_TODO = needsFloatingPoint();
/** Booting to a shell takes about a minute in Node; the interpreter in a tab may be slower. */
const BOOT_MS = 8 * 60_000;

describe('virtus web in Chromium', { timeout: BOOT_MS + 5 * 60_000 }, () => {
  let server: WebServer;
  let browser: Browser;
  let page: Page;
  let shell = false;
  let screenshot = false;
  const errors: string[] = [];

  before(async () => {
    server = await startServer();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
  });

  after(async () => {
    // A failed run leaves the screen as it was, to explain the failure.
    if (!screenshot) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page?.screenshot({ path: join(ARTIFACTS, 'web-console.png') }).catch(() => {});
    }
    await browser?.close();
    await server?.stop();
  });

  it('runs the machine in a worker with guest RAM in shared memory (the page is cross-origin isolated)', async () => {
    const info = await waitInPage(page, 'the machine starting', () => {
      const i = window.virtus?.info();
      return i?.capabilities && window.virtus.state() === 'running' ? i : null;
    }, null);
    assert.equal(info.crossOriginIsolated, true);
    assert.equal(info.capabilities!.sharedMemory, true);
    assert.equal(info.sources.kernel, 'network');
    assert.deepEqual(errors, []);
  });

  it('boots the default guest to a shell', { todo: SHELL_TODO }, async () => {
    // A kernel panic ends the wait at once: the screen then explains the failure.
    const screen = await waitInPage(page, 'a shell prompt', () => {
      const text = window.virtus.screenText();
      return /[#$] $/m.test(text) || /Kernel panic/.test(text) || window.virtus.state() === 'stopped' ? text : null;
    }, null, BOOT_MS);
    assert.match(screen, /[#$] $/m, `no shell prompt:\n${screen}`);
    shell = true;
  });

  it('answers `uname -a` typed into the terminal, on the screen', { todo: SHELL_TODO }, async () => {
    assert.ok(shell, 'no shell to type into (see the failure above)');
    await page.evaluate(() => window.virtus.type('uname -a\n'));
    const line = await waitInPage(page, 'the answer to uname -a', () => {
      return window.virtus.screenText().split('\n').find((l) => /^Linux \S+ \S+.* riscv64/.test(l)) ?? null;
    }, null, 120_000);
    assert.match(line, /^Linux \S+ \d+\.\d+\S* .*riscv64/);
  });

  it('shows each kernel message once: the UART is hidden once the guest drives hvc0', { todo: SHELL_TODO }, async () => {
    assert.ok(shell, 'no shell to type into (see the failure above)');
    const lines = (await page.evaluate(() => window.virtus.screenText())).split('\n').filter((l) => /^\[\s*\d+\.\d+\] /.test(l));
    assert.ok(lines.length > 20, `kernel messages on the screen:\n${lines.join('\n')}`);
    const twice = lines.filter((l, i) => lines.indexOf(l) !== i);
    assert.deepEqual(twice, []);
  });

  it('draws underscores (they sit below the baseline, at the edge of the cell)', { todo: SHELL_TODO }, async () => {
    assert.ok(shell, 'no shell to type into (see the failure above)');
    await run(page, "echo '________________' | sed 's/^/u:/'", 'u:________________');
    // The row's pixels: the underscores are the only ink right of "u:".
    const box = await page.evaluate(() => {
      const row = [...document.querySelectorAll<HTMLElement>('.xterm-rows > div')].reverse().find((r) => r.textContent?.trimEnd() === 'u:________________');
      const r = row?.getBoundingClientRect();
      return r ? { x: r.x, y: r.y, width: r.width, height: r.height } : null;
    });
    assert.ok(box, 'the row of underscores');
    const px = decodePng(await page.screenshot({ clip: box }));
    let ink = 0;
    for (let y = 0; y < px.height; y++) for (let x = Math.floor(px.width / 10); x < px.width / 3; x++) if (px.at(x, y) > 128) ink++;
    assert.ok(ink > 20, `${ink} bright pixels where the underscores are`);
  });

  it('fits a 400-pixel-wide window: a usable terminal, and every button inside the window', { todo: SHELL_TODO }, async () => {
    assert.ok(shell, 'no shell to type into (see the failure above)');
    await page.setViewportSize({ width: 400, height: 800 });
    try {
      const t = await waitInPage(page, 'the terminal refitted', () => (window.virtus.info().terminal.cols < 60 ? window.virtus.info().terminal : null), null);
      assert.ok(t.cols >= 40 && t.rows >= 10, `terminal ${t.cols}x${t.rows}`);
      const outside = await page.evaluate(() =>
        [...document.querySelectorAll<HTMLElement>('header button')].filter((b) => b.getBoundingClientRect().right > window.innerWidth).map((b) => b.textContent),
      );
      assert.deepEqual(outside, []);
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
      // The tests after this one read the terminal's size: wait for the refit back.
      await waitInPage(page, 'the terminal refitted to the wide window', () => window.virtus.info().terminal.cols > 60, null);
    }
  });

  it("tells the guest the terminal's new size when the window changes (virtio-console)", { todo: SHELL_TODO }, async () => {
    assert.ok(shell, 'no shell to type into (see the failure above)');
    const size = async (before: string | null): Promise<string> => {
      await page.evaluate(() => window.virtus.type("stty size | sed 's/^/size: /'\n"));
      return waitInPage(page, 'stty size', (b) => {
        const all = window.virtus.screenText().split('\n').filter((l) => /^size: \d+ \d+$/.test(l));
        const last = all[all.length - 1];
        return last && last !== b ? last : null;
      }, before);
    };
    const info = await page.evaluate(() => window.virtus.info());
    assert.equal(info.capabilities!.consoleResize, true);
    const first = await size(null);
    assert.equal(first, `size: ${info.terminal.rows} ${info.terminal.cols}`);
    await page.setViewportSize({ width: 1000, height: 600 });
    const t = await waitInPage(page, 'a smaller terminal', (c) => (window.virtus.info().terminal.cols < c ? window.virtus.info().terminal : null), info.terminal.cols);
    assert.equal(await size(first), `size: ${t.rows} ${t.cols}`);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('shows non-zero hypercall and device-access counters in the panel', async () => {
    const s = await page.evaluate(() => window.virtus.stats());
    assert.ok(s, 'no counters yet');
    const sum = (r: Record<string, number>) => Object.values(r).reduce((a, n) => a + n, 0);
    assert.ok(sum(s.sbi) > 0, `SBI calls: ${JSON.stringify(s.sbi)}`);
    assert.ok(sum(s.devices) > 0, `device accesses: ${JSON.stringify(s.devices)}`);
    assert.ok((s.devices['uart0'] ?? 0) > 0, 'the console UART was used');
    // The panel renders the same counters: its sections show the totals.
    const shown = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('#stats .stats-section')].map((e) => [e.dataset.section, e.querySelector('.series-value')?.textContent ?? '']),
    );
    const total = (key: string) => Number(/·\s*([\d.]+)/.exec(shown.find(([k]) => k === key)?.[1] ?? '')?.[1] ?? 0);
    assert.ok(total('sbi') > 0, `SBI section: ${JSON.stringify(shown)}`);
    assert.ok(total('devices') > 0, `devices section: ${JSON.stringify(shown)}`);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'web-console.png') });
    screenshot = true;
  });

  it('pauses and resumes the machine', async () => {
    await page.click('#pause');
    await waitInPage(page, 'the paused state', () => window.virtus.state() === 'paused', null);
    const a = await page.evaluate(() => window.virtus.stats()!.instructions);
    // The worker sends a final sample when it stops; later samples must not move.
    await waitInPage(page, 'a later sample', (n) => window.virtus.stats()!.instructions === n, a);
    await page.click('#pause');
    await waitInPage(page, 'instructions running again', (n) => window.virtus.stats()!.instructions > n, a);
  });

  it('saves a snapshot and loads it back: the guest continues from the saved state', { todo: SHELL_TODO }, async (t) => {
    assert.ok(shell, 'no shell to type into (see the failure above)');
    await run(page, 'echo snap-$((6*7)) > /tmp/m && echo written-$((1+1))', 'written-2');
    const saved = await page.evaluate(async () => {
      const t0 = performance.now();
      const bytes = await window.virtus.saveSnapshot();
      (window as unknown as { snap: Uint8Array }).snap = bytes;
      return { size: bytes.length, ms: performance.now() - t0, magic: new TextDecoder().decode(bytes.subarray(0, 8)), state: window.virtus.state() };
    });
    assert.equal(saved.magic, 'VIRTSNAP');
    assert.equal(saved.state, 'running', 'the machine runs on after a save');
    await run(page, 'rm /tmp/m && echo removed-$((2+3))', 'removed-5');
    const loadMs = await page.evaluate(async () => {
      const t0 = performance.now();
      await window.virtus.loadSnapshot((window as unknown as { snap: Uint8Array }).snap);
      return performance.now() - t0;
    });
    t.diagnostic(`snapshot: ${(saved.size / 2 ** 20).toFixed(1)} MiB, saved in ${saved.ms.toFixed(0)} ms, loaded in ${loadMs.toFixed(0)} ms (in the page, round trip to the worker)`);
    assert.equal(await page.evaluate(() => window.virtus.info().snapshot), '(bytes)');
    await waitInPage(page, 'the loaded machine running', () => window.virtus.state() === 'running', null);
    await run(page, 'cat /tmp/m', 'snap-42');
  });

  it('refuses a corrupt snapshot with a message, and the guest runs on', { todo: SHELL_TODO }, async () => {
    assert.ok(shell, 'no shell to type into (see the failure above)');
    const refused = await page.evaluate(async (withDisk) => {
      const snap = (window as unknown as { snap: Uint8Array }).snap;
      const answers: string[] = [];
      for (const bytes of [snap.subarray(0, snap.length >> 1), new TextEncoder().encode('#!/bin/sh\necho not a snapshot\n'), new Uint8Array(withDisk)]) {
        answers.push(await window.virtus.loadSnapshot(bytes).then(() => 'loaded', (e: Error) => e.message));
      }
      return { truncated: answers[0]!, other: answers[1]!, disk: answers[2]! };
    }, [...(await snapshotWithDisk('data.img', new Uint8Array(1 << 20)))]);
    assert.match(refused.truncated, /snapshot \(bytes\) is truncated/);
    assert.match(refused.other, /is not a virtus snapshot/);
    assert.match(refused.disk, /the snapshot's machine has 1 disk and this one has none: boot with them, then load the snapshot/);
    const screen = await page.evaluate(() => window.virtus.screenText());
    assert.match(screen, /\[virtus\] cannot load the snapshot: snapshot \(bytes\) is truncated/);
    assert.equal(await page.evaluate(() => window.virtus.state()), 'running');
    await run(page, 'echo alive-$((3+4)) $(cat /tmp/m)', 'alive-7 snap-42');
    await page.evaluate(() => delete (window as unknown as { snap?: Uint8Array }).snap);
  });

  it('boots from the browser cache on a second visit', async () => {
    await page.reload();
    const info = await waitInPage(page, 'the machine starting again', () => {
      const i = window.virtus?.info();
      return i?.capabilities && window.virtus.state() === 'running' ? i : null;
    }, null);
    assert.equal(info.sources.kernel, 'cache');
    assert.equal(info.sources.initrd, 'cache');
  });
});

/** Types `command` into the guest's shell and waits for a line of output that is exactly `line`. */
async function run(page: Page, command: string, line: string): Promise<void> {
  await page.evaluate((c) => window.virtus.type(`${c}\n`), command);
  await waitInPage(page, `"${line}" after ${command}`, (l) => window.virtus.screenText().split('\n').some((x) => x.trimEnd() === l), line, 120_000);
}

describe('virtus web without cross-origin isolation', { timeout: 5 * 60_000 }, () => {
  it('runs the machine with guest RAM in ordinary memory', async () => {
    const server = await startServer(['--no-isolation']);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      // Two harts: without shared memory they take turns in the machine's worker, and the page says why.
      await page.goto(`${server.url}?smp=2`);
      const info = await waitInPage(page, 'the machine running', () => {
        const i = window.virtus?.info();
        return i?.capabilities && (window.virtus.stats()?.instructions ?? 0) > 1_000_000 ? i : null;
      }, null, 120_000);
      assert.equal(info.crossOriginIsolated, false);
      assert.equal(info.capabilities!.sharedMemory, false);
      assert.match(info.capabilities!.noHartThreads ?? '', /not cross-origin isolated/);
      assert.match(await page.locator('#machine-info').innerText(), /harts\s+2, taking turns in the machine's worker: the page is not cross-origin isolated/);
      const stats = await page.evaluate(() => window.virtus.stats());
      assert.equal(stats?.harts['threads of their own'], undefined);
    } finally {
      await browser.close();
      await server.stop();
    }
  });
});

/**
 * A snapshot of a machine with a disk, made by the VMM in Node as `virtus run` makes them
 * (the devices of --drive file=NAME --console virtio); the disk holds `disk`.
 */
async function snapshotWithDisk(name: string, disk: Uint8Array): Promise<Uint8Array> {
  const spec = parseMachineSpec({ memory: 16 << 20, boot: { kernel: 'none' }, devices: { disks: [{ file: name, serial: 'virtus-root' }], console: 'virtio' } });
  const backend = new RawBackend(new MemoryHostFile(name, disk.slice()));
  const host = {
    runner: { yield: async () => {}, sleep: async () => {}, wake() {} },
    readFile: () => new Uint8Array(0),
    openDisk: () => ({ backend, close() {} }),
    warn() {},
  };
  const built = await buildBoard(spec, host, { output() {}, warn() {} });
  return Buffer.concat(encodeSnapshot(built.board, shapeOf(spec, [])));
}

describe('virtus web snapshots of a machine with a disk', { timeout: 5 * 60_000 }, () => {
  it("loads its own snapshot, and refuses one whose disk is not the tab's", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'virtus-web-snap-'));
    const disk = new Uint8Array(2 << 20).map((_, i) => (i * 7) & 0xff);
    writeFileSync(join(dir, 'data.img'), disk);
    const server = await startServer(['--drive', `file=${join(dir, 'data.img')}`]);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(server.url);
      await waitInPage(page, 'the machine running', () => window.virtus?.info().diskAttached && window.virtus.state() === 'running', null, 120_000);
      // The guest does not mount /dev/vda: the disk stays as the snapshot saw it.
      const own = await page.evaluate(async () => {
        const bytes = await window.virtus.saveSnapshot();
        await window.virtus.loadSnapshot(bytes);
        return { size: bytes.length, disk: window.virtus.info().diskAttached };
      });
      assert.equal(own.disk, true);
      const other = disk.slice();
      other[512] ^= 0xff;
      const answers = await page.evaluate(async (files) => {
        const out: string[] = [];
        for (const f of files) out.push(await window.virtus.loadSnapshot(new Uint8Array(f)).then(() => 'loaded', (e: Error) => e.message));
        return out;
      }, [[...(await snapshotWithDisk('data.img', other))], [...(await snapshotWithDisk('data.img', disk.subarray(0, 1 << 20)))]]);
      t.diagnostic(`own snapshot (early in boot, with a 2 MiB disk): ${(own.size / 2 ** 20).toFixed(1)} MiB; refusals: ${answers.join(' | ')}`);
      assert.match(answers[0]!, /disk data\.img is not the disk the snapshot was taken with/);
      assert.match(answers[1]!, /disk data\.img is \d+ bytes, but the snapshot's .* was \d+: not the same disk/);
      const n = await page.evaluate(() => window.virtus.stats()?.instructions ?? 0);
      await waitInPage(page, 'the machine running on', (a) => window.virtus.state() === 'running' && (window.virtus.stats()?.instructions ?? 0) > a, n);
    } finally {
      await browser.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('virtus web with two harts (?smp=2)', { timeout: BOOT_MS + 5 * 60_000, todo: SHELL_TODO }, () => {
  it('runs hart 1 in a Web Worker of its own: Linux counts two processors', async () => {
    const server = await startServer();
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${server.url}?smp=2`);
      const screen = await waitInPage(page, 'a shell prompt', () => {
        const text = window.virtus.screenText();
        return /[#$] $/m.test(text) || /Kernel panic/.test(text) || window.virtus.state() === 'stopped' ? text : null;
      }, null, BOOT_MS);
      assert.match(screen, /[#$] $/m, `no shell prompt:\n${screen}`);
      const info = await page.evaluate(() => window.virtus.info());
      assert.equal(info.capabilities!.noHartThreads, null);
      assert.match(await page.locator('#machine-info').innerText(), /harts\s+2, each in a Web Worker of its own/);
      await run(page, 'nproc', '2');
      await run(page, 'grep -c ^processor /proc/cpuinfo', '2');
      const stats = await page.evaluate(() => window.virtus.stats());
      assert.equal(stats?.harts['threads of their own'], 1, JSON.stringify(stats?.harts));
      assert.ok((stats?.harts['hart1 instructions'] ?? 0) > 0, 'hart 1 ran');
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await server.stop();
    }
  });
});
