/**
 * The page's terminal and buttons with a guest that boots in an instant (test/web/guest/echo.S,
 * an echo loop on the UART): keys typed reach the guest and its answer reaches the screen,
 * long lines read back whole, the terminal follows the window, the counters count, and the
 * user's own files boot from the file chooser and from a drop.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { buildGuest, GUEST_SRC } from '../support/toolchain.ts';
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
});
