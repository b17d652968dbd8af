/**
 * Files into and out of the tab's machine: the default guest boots in Chromium with the tab's
 * shared folder mounted at /mnt/tab by its own rcS; files dropped on the page (an empty one,
 * a line of text, a few MiB of binary) and one put with the Files panel's chooser read back
 * in the guest with the checksums Node computes; files the guest writes there are listed and
 * download byte for byte through the panel's buttons; the guest's mount works on in a snapshot
 * loaded back; a reset keeps the folder's files.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { TAB_SHARE } from '../../src/vmm/spec.ts';
import { launchChromium, startServer, type WebServer } from './browser.ts';
import { waitInPage } from './wait.ts';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/**
 * Bytes made from a seed by xorshift32, the same source text run in Node and in the page, so
 * megabytes need not cross the wire (a function passed as text: the test's own functions are
 * transformed by its loader, which the page does not have).
 */
const PATTERN_SRC = `(seed, n) => {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}`;
const pattern = new Function(`return ${PATTERN_SRC}`)() as (seed: number, n: number) => Uint8Array;

const TEXT = 'a line of text for the guest\n';
const BIG = { seed: 0x5eed, size: 3 * 1024 * 1024 + 123 };

/** Types a command and waits for a line the answer must hold; returns the screen's lines. */
async function run(page: Page, command: string, line: RegExp): Promise<string[]> {
  await page.evaluate((c) => window.virtus.type(`${c}\n`), command);
  return waitInPage(page, `${line} after ${command}`, (src) => {
    const lines = window.virtus.screenText().split('\n').map((l) => l.trimEnd());
    return lines.some((l) => new RegExp(src).test(l)) ? lines : null;
  }, line.source, 60_000);
}

/** The checksum sha256sum printed for `name` (the last one on the screen). */
function sum(lines: string[], name: string): string | undefined {
  return lines.map((l) => /^([0-9a-f]{64})  (\S+)$/.exec(l)).filter((m) => m?.[2] === name).pop()?.[1];
}

describe("the tab's shared folder", { timeout: 10 * 60_000 }, () => {
  let server: WebServer;
  let browser: Browser;
  let page: Page;
  let dir: string;
  const errors: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'virtus-web-share-'));
    server = await startServer();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is mounted by the default guest at /mnt/tab', async () => {
    const t0 = Date.now();
    const screen = await waitInPage(page, 'a shell prompt', () => {
      const text = window.virtus?.screenText() ?? '';
      return /[#$] $/m.test(text) || /Kernel panic/.test(text) || window.virtus?.state() === 'stopped' ? text : null;
    }, null, 8 * 60_000);
    console.log(`booted to a shell in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.match(screen, /[#$] $/m);
    const lines = await run(page, `grep -c ' ${TAB_SHARE.mountPoint} 9p ' /proc/mounts | sed 's/^/mounts: /'`, /^mounts: \d+$/);
    assert.ok(lines.includes('mounts: 1'), `/proc/mounts has ${TAB_SHARE.mountPoint} once:\n${lines.join('\n')}`);
    assert.equal((await page.evaluate(() => window.virtus.info())).capabilities!.share, true);
  });

  it('takes files dropped on the page into the folder, and the guest reads them as they were', async () => {
    const dt = await page.evaluateHandle(`(() => {
      const make = ${PATTERN_SRC};
      const t = new DataTransfer();
      t.items.add(new File([], 'empty'));
      t.items.add(new File([${JSON.stringify(TEXT)}], 'note.txt'));
      t.items.add(new File([make(${BIG.seed}, ${BIG.size})], 'blob.bin'));
      return t;
    })()`);
    await page.dispatchEvent('#terminal', 'drop', { dataTransfer: dt });
    await waitInPage(page, 'three files in the Files panel', () => document.querySelectorAll('#share .download').length >= 3, null);
    const lines = await run(page, `cd ${TAB_SHARE.mountPoint} && sha256sum empty note.txt blob.bin && echo sums-done`, /^sums-done$/);
    assert.equal(sum(lines, 'empty'), sha256(new Uint8Array(0)));
    assert.equal(sum(lines, 'note.txt'), sha256(new TextEncoder().encode(TEXT)));
    assert.equal(sum(lines, 'blob.bin'), sha256(pattern(BIG.seed, BIG.size)));
    assert.equal(await page.evaluate(() => window.virtus.info().sources.kernel), 'network', 'a data file boots nothing');
  });

  it('refuses a name the guest could not use, in one line, and puts nothing', async () => {
    const answers = await page.evaluate(async () => {
      const out: string[] = [];
      for (const name of ['..', 'a\0b', 'x'.repeat(256)]) out.push(await window.virtus.putFile(name, new Uint8Array(3)).then(() => 'put', (e: Error) => e.message));
      return out;
    });
    assert.match(answers[0]!, /^cannot put "\.\." in the shared folder: invalid name/);
    assert.match(answers[1]!, /^cannot put "a\\u0000b" in the shared folder: invalid name/);
    assert.match(answers[2]!, /^cannot put "x+" in the shared folder: names are at most 255 bytes$/);
    const names = (await page.evaluate(() => window.virtus.shareFiles()))!.files.map((f) => f.path.join('/')).sort();
    assert.deepEqual(names, ['blob.bin', 'empty', 'note.txt']);
  });

  it("puts a file chosen with the panel's button", async () => {
    const file = join(dir, 'chosen.dat');
    const bytes = pattern(7, 100_000);
    writeFileSync(file, bytes);
    await page.setInputFiles('#share input[type="file"]', file);
    await page.waitForSelector(`#share .download[data-path='["chosen.dat"]']`, { timeout: 10_000 });
    const lines = await run(page, `sha256sum ${TAB_SHARE.mountPoint}/chosen.dat`, /^[0-9a-f]{64} {2}\S+chosen\.dat$/);
    assert.equal(sum(lines, `${TAB_SHARE.mountPoint}/chosen.dat`), sha256(bytes));
  });

  it('lists files the guest writes and downloads them byte for byte', async () => {
    const lines = await run(
      page,
      `echo hi from the guest > ${TAB_SHARE.mountPoint}/out.txt && head -c 1500000 /dev/urandom > ${TAB_SHARE.mountPoint}/rand.bin && cd ${TAB_SHARE.mountPoint} && sha256sum rand.bin`,
      /^[0-9a-f]{64} {2}rand\.bin$/,
    );
    const guestSum = sum(lines, 'rand.bin')!;
    const download = async (name: string): Promise<Uint8Array> => {
      const selector = `#share .download[data-path='${JSON.stringify([name])}']`;
      await page.waitForSelector(selector, { timeout: 10_000 });
      const [d] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
      assert.equal(d.suggestedFilename(), name);
      const to = join(dir, `downloaded-${name}`);
      await d.saveAs(to);
      return new Uint8Array(readFileSync(to));
    };
    assert.deepEqual(await download('out.txt'), new TextEncoder().encode('hi from the guest\n'));
    const rand = await download('rand.bin');
    assert.equal(rand.length, 1_500_000);
    assert.equal(sha256(rand), guestSum);
    // What was dropped downloads as it went in.
    assert.equal(sha256(await download('blob.bin')), sha256(pattern(BIG.seed, BIG.size)));
  });

  it("keeps the guest's mount working across a snapshot saved and loaded back (the folder's files are not in it)", async () => {
    await page.evaluate(async () => {
      const bytes = await window.virtus.saveSnapshot();
      await window.virtus.loadSnapshot(bytes);
    });
    // The shell's working directory is still /mnt/tab: the restored fids name it by path.
    const lines = await run(page, 'cat out.txt | sed "s/^/read: /"; echo after > after.txt && ls | tr "\\n" " " | sed "s/^/ls: /"', /^ls: /);
    assert.ok(lines.includes('read: hi from the guest'), lines.join('\n'));
    assert.match(lines.find((l) => l.startsWith('ls: '))!, /after\.txt.*blob\.bin.*chosen\.dat.*empty.*note\.txt.*out\.txt.*rand\.bin/);
    await page.waitForSelector(`#share .download[data-path='["after.txt"]']`, { timeout: 10_000 });
  });

  it('keeps the files across a reset', async () => {
    const before = await page.evaluate(() => window.virtus.shareFiles());
    await page.evaluate(() => window.virtus.reset());
    await waitInPage(page, "the new machine's folder in the panel", (n) => {
      return !(document.querySelector('#share') as HTMLElement).hidden && document.querySelectorAll('#share .download').length === n;
    }, before!.files.length);
    const after = await page.evaluate(() => window.virtus.shareFiles());
    const names = (l: typeof before) => l!.files.map((f) => `${f.path.join('/')}:${f.size}`).sort();
    assert.deepEqual(names(after), names(before));
    assert.deepEqual(errors, []);
  });
});
