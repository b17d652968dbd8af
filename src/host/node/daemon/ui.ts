/**
 * The daemon's web console: src/host/browser/daemon/ (page, styles, xterm.js) and the machine
 * worker of src/host/browser/ (which runs a machine moved into the tab) bundled with esbuild on
 * the first request for it, then served from memory at /ui.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VirtusError } from '../../../util/errors.ts';
import { BROWSER_DIR, type Asset } from '../commands/web-bundle.ts';

let assets: Promise<Map<string, Asset>> | null = null;

async function bundle(): Promise<Map<string, Asset>> {
  const dir = join(BROWSER_DIR, 'daemon');
  const esbuild = await import('esbuild').catch(() => {
    throw new VirtusError('WEB_BUNDLE', "the web console needs esbuild (run 'npm install' in the virtus checkout)");
  });
  const result = await esbuild.build({
    entryPoints: { page: join(dir, 'page.ts'), worker: join(BROWSER_DIR, 'worker.ts') },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outdir: '/ui',
    write: false,
    logLevel: 'silent',
  });
  const out = new Map<string, Asset>();
  for (const f of result.outputFiles) {
    const name = f.path.split('/').pop()!;
    out.set(name, { body: f.contents, type: name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8' });
  }
  const html = readFileSync(join(dir, 'index.html'));
  out.set('index.html', { body: new Uint8Array(html.buffer, html.byteOffset, html.length), type: 'text/html; charset=utf-8' });
  return out;
}

/** The asset `name` of the web console (index.html, page.js, page.css, worker.js). */
export async function uiAsset(name: string): Promise<Asset> {
  assets ??= bundle();
  assets.catch(() => (assets = null));
  const a = (await assets).get(name);
  if (!a) throw new VirtusError('NOT_FOUND', `no /ui/${name} (the web console is /ui)`);
  return a;
}
