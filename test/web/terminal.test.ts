/**
 * The page's terminal and buttons with a guest that boots in an instant (test/web/guest/echo.S,
 * an echo loop on the UART): keys typed reach the guest and its answer reaches the screen,
 * long lines read back whole, the terminal follows the window, the counters count, and the
 * user's own files boot from the file chooser and from a drop; a snapshot saved with the
 * button loads from the file chooser and from a drop; a disk gets a working copy in OPFS;
 * bad flags are one line.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { buildGuest, GUEST_SRC, runVirtus } from '../support/toolchain.ts';
import { launchChromium, startServer, type WebServer } from './browser.ts';
import { waitInPage } from './wait.ts';

const ECHO = buildGuest('web-echo', [join(GUEST_SRC, '../web/guest/echo.S')], { ldscript: join(GUEST_SRC, '../web/guest/echo.ld') });

describe('the web console with a small guest', { timeout: 5 * 60_000 }, () => {
  let server: WebServer;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    server = await startServer(['--kernel', ECHO]);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1200, height: 700 } });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('boots the guest and shows its coloured banner and prompt', async () => {
    await waitInPage(page, 'the prompt', () => /echo\$ $/m.test(window.virtus?.screenText() ?? ''), null);
    const text = await page.evaluate(() => window.virtus.screenText());
    assert.match(text, /^virtus echo guest: type a line$/m, 'escape sequences are colours, not text');
    const green = await page.evaluate(() => {
      const span = [...document.querySelectorAll('#terminal .xterm-rows span')].find((s) => s.textContent?.includes('virtus echo guest'));
      return span ? getComputedStyle(span).color : null;
    });
    assert.ok(green && green !== 'rgb(216, 222, 228)', `the banner is drawn in a colour (${green})`);
    assert.deepEqual(errors, []);
  });

  it('sends keys typed on the keyboard to the guest, Backspace included', async () => {
    await page.click('#terminal');
    await page.keyboard.type('keys typed');
    await page.keyboard.press('Backspace');
    await page.keyboard.press('Backspace');
    await page.keyboard.type('ped!');
    await page.keyboard.press('Enter');
    await waitInPage(page, 'the answer', () => window.virtus.screenText().includes('you typed: keys typped!'), null);
  });

  it('window.virtus.type() types, and screenText() gives a wrapped line back whole', async () => {
    const long = 'x'.repeat(60) + ' ' + 'y'.repeat(59);
    await page.evaluate((t) => window.virtus.type(`${t}\n`), long);
    await waitInPage(page, 'the long answer', (t) => window.virtus.screenText().split('\n').includes(`you typed: ${t}`), long);
  });

  it('counts the hypercall and the UART accesses', async () => {
    const s = await waitInPage(page, 'counters', () => window.virtus.stats(), null);
    assert.ok((s.sbi['base.get_spec_version'] ?? 0) >= 1, JSON.stringify(s.sbi));
    assert.ok((s.devices['uart0'] ?? 0) > 100, JSON.stringify(s.devices));
    assert.ok(s.instructions > 0);
  });

  it('fits the terminal to the window (the UART cannot tell the guest, so only locally)', async () => {
    const before = await page.evaluate(() => window.virtus.info());
    assert.equal(before.capabilities!.consoleResize, false);
    await page.setViewportSize({ width: 900, height: 500 });
    const after = await waitInPage(page, 'a narrower terminal', (c) => {
      const t = window.virtus.info().terminal;
      return t.cols < c ? t : null;
    }, before.terminal.cols);
    assert.ok(after.rows < before.terminal.rows);
    await page.setViewportSize({ width: 1200, height: 700 });
  });

  it('resets: a new machine boots the same files, without fetching them again', async () => {
    const source = await page.evaluate(() => window.virtus.info().sources.kernel);
    await page.click('#reset');
    await waitInPage(page, 'a fresh screen', () => !window.virtus.screenText().includes('you typed'), null);
    await waitInPage(page, 'the prompt again', () => /echo\$ $/m.test(window.virtus.screenText()), null);
    assert.equal(await page.evaluate(() => window.virtus.info().sources.kernel), source);
  });

  it("boots the user's own kernel from the file chooser", async () => {
    await page.click('#files summary');
    await page.setInputFiles('#files .slot[data-role="kernel"] input', ECHO);
    await page.click('#boot-files');
    await waitInPage(page, 'the user kernel', () => window.virtus.info().sources.kernel === 'user' && /echo\$ $/m.test(window.virtus.screenText()), null);
  });

  it("boots a kernel dropped onto the page", async () => {
    await page.click('#files .slot[data-role="kernel"] .clear');
    const bytes = [...readFileSync(ECHO)];
    const dt = await page.evaluateHandle((b) => {
      const t = new DataTransfer();
      t.items.add(new File([new Uint8Array(b)], 'dropped.elf'));
      return t;
    }, bytes);
    await page.dispatchEvent('#terminal', 'drop', { dataTransfer: dt });
    await waitInPage(page, 'the dropped kernel', () => {
      const name = document.querySelector('#files .slot[data-role="kernel"] .name')?.textContent ?? '';
      return name.startsWith('dropped.elf') && window.virtus.info().sources.kernel === 'user' && /echo\$ $/m.test(window.virtus.screenText());
    }, null);
    assert.deepEqual(errors, []);
  });

  it('saves a snapshot as a download, and loads it from the file chooser and from a drop', async () => {
    // Half a line typed before the save: the guest's line buffer is in the snapshot.
    await page.evaluate(() => window.virtus.type('half'));
    await waitInPage(page, 'the echo of "half"', () => /echo\$ half$/m.test(window.virtus.screenText()), null);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#snapshot-save')]);
    assert.match(download.suggestedFilename(), /^virtus-\d{4}-\d\d-\d\dT[\d-]+\.snap$/);
    const dir = mkdtempSync(join(tmpdir(), 'virtus-web-snap-'));
    try {
      const file = join(dir, download.suggestedFilename());
      await download.saveAs(file);
      assert.equal(readFileSync(file).subarray(0, 8).toString('latin1'), 'VIRTSNAP');
      await page.evaluate(() => window.virtus.type(' more\n'));
      await waitInPage(page, 'the line', () => window.virtus.screenText().includes('you typed: half more'), null);

      await page.setInputFiles('#snapshot-file', file);
      await waitInPage(page, 'the snapshot loaded', () => window.virtus.info().snapshot !== null && window.virtus.state() === 'running', null);
      await page.evaluate(() => window.virtus.type(' again\n'));
      await waitInPage(page, 'the restored line', () => window.virtus.screenText().includes('you typed: half again'), null);

      const dt = await page.evaluateHandle((b) => {
        const t = new DataTransfer();
        t.items.add(new File([new Uint8Array(b)], 'dropped.snap'));
        return t;
      }, [...readFileSync(file)]);
      await page.dispatchEvent('#terminal', 'drop', { dataTransfer: dt });
      await waitInPage(page, 'the dropped snapshot loaded', () => window.virtus.info().snapshot === 'dropped.snap', null);
      await page.evaluate(() => window.virtus.type(' dropped\n'));
      await waitInPage(page, 'the line once more', () => window.virtus.screenText().includes('you typed: half dropped'), null);
      assert.equal(await page.evaluate(() => window.virtus.info().sources.kernel), 'user', 'a dropped snapshot boots nothing');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(errors, []);
  });
});

describe('the web console with a disk and virtio-console', { timeout: 5 * 60_000 }, () => {
  it('attaches the disk from a working copy in OPFS and offers a resizable console', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'virtus-web-'));
    const disk = join(dir, 'small.img');
    writeFileSync(disk, new Uint8Array(1 << 20).fill(0xa5));
    const server = await startServer(['--kernel', ECHO, '--drive', `file=${disk}`, '--console', 'virtio']);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(server.url);
      const info = await waitInPage(page, 'the machine running', () => {
        const i = window.virtus?.info();
        return i?.diskAttached && window.virtus.state() === 'running' ? i : null;
      }, null);
      assert.equal(info.capabilities!.consoleResize, true);
      assert.equal(info.capabilities!.persistentDisk, true);
      assert.equal(info.sources.disk, 'network');
      // The guest's working copy: the served image, byte for byte, in the origin's private files.
      const copy = await page.evaluate(async () => {
        const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('virtus-disks');
        const f = await (await dir.getFileHandle('small.img')).getFile();
        const b = new Uint8Array(await f.arrayBuffer());
        return { size: b.length, all: b.every((x) => x === 0xa5) };
      });
      assert.deepEqual(copy, { size: 1 << 20, all: true });
      const s = await waitInPage(page, 'counters', () => window.virtus.stats(), null);
      assert.ok(s.devices['uart0']! > 0, JSON.stringify(s.devices));
    } finally {
      await browser.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('virtus web: bad input', () => {
  it('says in one line that a port is in use, or a flag is wrong', async () => {
    const server = await startServer(['--kernel', ECHO]);
    try {
      const port = new URL(server.url).port;
      const busy = runVirtus(['web', '--port', port, '--kernel', ECHO], { timeout: 60_000 });
      assert.equal(busy.status, 1);
      assert.match(busy.stderr, /^virtus: web: port \d+ is in use \(pick another with --port\)\n$/);
    } finally {
      await server.stop();
    }
    const bad = runVirtus(['web', '--port', '70000']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^virtus: --port: 70000 is not a TCP port \(0-65535\)\n$/);
    const con = runVirtus(['web', '--kernel', ECHO, '--console', 'tty']);
    assert.equal(con.status, 2);
    assert.match(con.stderr, /^virtus: web: --console must be serial or virtio, not "tty"\n$/);
    const missing = runVirtus(['web', '--kernel', '/nonexistent/Image']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /^virtus: web: cannot open kernel \/nonexistent\/Image: no such file\n$/);
    // A tab's one NIC is the user NAT relayed through the server: what it cannot have is one line.
    for (const [nic, why] of [
      [['--nic', 'user,hostfwd=tcp::8080-:80'], 'a browser tab cannot listen on host ports: drop hostfwd='],
      [['--netdev', 'stream,id=n0,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=9', '--device', 'virtio-net-device,netdev=n0'], 'a browser tab reaches the network through this server: --nic user, or a stream link this server connects (switch=, stream with server=off)'],
      [['--nic', 'user', '--nic', 'user'], 'a browser tab has one user NAT'],
    ] as const) {
      const r = runVirtus(['web', '--kernel', ECHO, ...nic]);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stderr, `virtus: web: ${why}\n`);
    }
  });
});
