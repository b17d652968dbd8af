/**
 * Bundles the browser side of `virtus web` (page script, worker, styles) with esbuild when
 * the server starts: the TypeScript sources are the only form of the page, so `npm install`
 * then `virtus web` works with no build step, and the page always matches the code.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VirtusError } from '../../../util/errors.ts';

/**
 * The browser sources: src/host/browser/, found from this module's directory upwards (this code
 * runs from src/ or from the command's bundle in build/cli/, see bin/virtus.mjs).
 */
export const BROWSER_DIR = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'src/host/browser');
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) return join(dirname(fileURLToPath(import.meta.url)), '../../browser');
    dir = up;
  }
})();

/** A file the server sends as it is. */
export interface Asset {
  body: Uint8Array;
  type: string;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
};

function typeOf(path: string): string {
  const dot = path.lastIndexOf('.');
  return TYPES[dot < 0 ? '' : path.slice(dot)] ?? 'application/octet-stream';
}

/**
 * Builds the page's assets, keyed by URL path: `/` (the HTML), `/virtus/page.js`,
 * `/virtus/page.css` (xterm's styles and ours), `/virtus/worker.js`, `/virtus/hart-worker.js`
 * (a hart's thread, which the machine's worker starts) and their source maps;
 * and the exec page's: `/exec`, `/virtus/exec-page.js`, `.css` and `/virtus/exec-worker.js`.
 */
export async function bundleBrowser(): Promise<Map<string, Asset>> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    throw new VirtusError('WEB_BUNDLE', "web: esbuild is not installed (run 'npm install' in the virtus checkout)");
  }
  let result;
  try {
    result = await esbuild.build({
      entryPoints: {
        page: join(BROWSER_DIR, 'page.ts'),
        worker: join(BROWSER_DIR, 'worker.ts'),
        'hart-worker': join(BROWSER_DIR, 'hart-worker.ts'),
        'exec-page': join(BROWSER_DIR, 'exec/page.ts'),
        'exec-worker': join(BROWSER_DIR, 'exec/worker.ts'),
      },
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      sourcemap: 'linked',
      outdir: '/virtus',
      write: false,
      logLevel: 'silent',
      // Any Node built-in reaching the bundle is a bug in the core (see test/web/core-imports.test.ts).
      external: [],
    });
  } catch (e) {
    const errors = (e as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }).errors;
    const first = errors?.[0];
    const where = first?.location ? ` (${first.location.file}:${first.location.line})` : '';
    throw new VirtusError('WEB_BUNDLE', `web: cannot bundle the page: ${first?.text ?? (e as Error).message}${where}`);
  }
  const assets = new Map<string, Asset>();
  for (const f of result.outputFiles) {
    const path = f.path.startsWith('/virtus/') ? f.path : `/virtus/${f.path.split('/').pop()}`;
    assets.set(path, { body: f.contents, type: typeOf(path) });
  }
  for (const [path, file] of [['/', 'index.html'], ['/exec', 'exec.html']] as const) {
    const html = readFileSync(join(BROWSER_DIR, 'static', file));
    assets.set(path, { body: new Uint8Array(html.buffer, html.byteOffset, html.byteLength), type: TYPES['.html']! });
  }
  return assets;
}
