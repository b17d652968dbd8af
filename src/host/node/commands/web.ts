/**
 * `virtus web`: serves a page on localhost that boots a guest inside the browser tab. The
 * page and its worker are the core modules bundled with the browser adapters (web-bundle.ts);
 * the guest's files are served by URL with their sizes (for download progress) and a version
 * per file (so the page's cache knows when a file changed).
 *
 * Every response carries COOP/COEP (unless --no-isolation), which makes the page
 * cross-origin isolated: only then may its worker create guest RAM as shared memory.
 */
import { createHash } from 'node:crypto';
import { createReadStream, realpathSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { basename } from 'node:path';
import { VirtusError } from '../../../util/errors.ts';
import { parseSize } from '../../../util/size.ts';
import { parseCount, parseFlags, type Command } from '../command.ts';
import { ensureDefaultGuest } from '../guest/fetch.ts';
import { stderrProgress } from '../guest/progress.ts';
import { bundleBrowser, type Asset } from './web-bundle.ts';

const HELP = `usage: virtus web [options]

Serves a page on http://localhost:PORT/ that boots a RISC-V machine inside the
browser tab, with a terminal for its console and a panel of the monitor's
counters. Without --kernel it serves the default guest (see 'virtus guest').
The browser caches the guest's files, so a second visit downloads nothing.

  --port N, -p N       TCP port on localhost (default 8080; 0 picks a free one)
  --kernel FILE        kernel to serve instead of the default guest's
  --initrd FILE        initial ramdisk to serve
  --disk FILE          disk image (raw or qcow2 without a backing file) to serve;
                       the guest sees it as /dev/vda, and its writes are kept in
                       the browser (OPFS), not in FILE
  --root disk          serve the default guest's root disk as /dev/vda with
                       root=/dev/vda (its first visit downloads about 130 MB)
  --console virtio|serial
                       the guest's console: virtio-console (hvc0, which follows
                       the terminal's size; the default guest's default) or the
                       UART (ttyS0; the default with --kernel, and for kernels
                       dropped on the page: every RISC-V Linux has a UART driver)
  --append STRING      kernel command line (default: console=ttyS0)
  --memory SIZE, -m    guest RAM (default 512M)
  --engine jit|interp  translate hot code to WebAssembly (default), or interpret;
                       a page URL's ?engine=jit or ?engine=interp overrides it
  --no-isolation       leave out the COOP/COEP headers: the page is not
                       cross-origin isolated and guest RAM is ordinary memory
  -h, --help           show this help

Stop the server with Ctrl-C.`;

const OPTIONS = {
  port: { type: 'string', short: 'p' },
  kernel: { type: 'string' },
  initrd: { type: 'string' },
  disk: { type: 'string' },
  root: { type: 'string' },
  console: { type: 'string' },
  append: { type: 'string' },
  memory: { type: 'string', short: 'm' },
  engine: { type: 'string' },
  'no-isolation': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const DEFAULT_PORT = 8080;
const DEFAULT_APPEND = 'console=ttyS0';

/** A guest file the server offers, as the page's manifest describes it. */
interface ServedFile {
  role: 'kernel' | 'initrd' | 'disk';
  path: string;
  name: string;
  size: number;
  /** Changes whenever the file does: the page's cache key. */
  version: string;
}

/** What /guest/manifest.json answers: everything the page needs to boot. */
export interface GuestManifest {
  title: string;
  append: string;
  ramSize: number;
  engine: 'jit' | 'interp';
  console: 'serial' | 'virtio';
  /** The root device, when the disk is the root file system. */
  root?: string;
  files: Record<string, { url: string; name: string; size: number; version: string }>;
}

function servedFile(role: ServedFile['role'], path: string): ServedFile {
  let st;
  let real;
  try {
    real = realpathSync(path);
    st = statSync(real);
  } catch {
    throw new VirtusError('FILE_OPEN', `web: cannot open ${role} ${path}: no such file`);
  }
  if (!st.isFile()) throw new VirtusError('FILE_OPEN', `web: ${role} ${path} is not a file`);
  const version = createHash('sha256').update(`${real}\0${st.size}\0${st.mtimeMs}`).digest('hex').slice(0, 16);
  return { role, path: real, name: basename(path), size: st.size, version };
}

interface GuestFlags {
  kernel?: string;
  initrd?: string;
  disk?: string;
  root?: string;
}

async function guestFiles(v: GuestFlags): Promise<{ title: string; files: ServedFile[]; root?: string }> {
  if (v.root !== undefined && v.root !== 'disk') throw new VirtusError('BAD_FLAG', `web: --root takes "disk" (the default guest's root disk), not "${v.root}"`, { exitCode: 2 });
  if (v.root && v.disk) throw new VirtusError('BAD_FLAG', 'web: --root disk and --disk FILE both name the disk; give one', { exitCode: 2 });
  if (v.kernel) {
    if (v.root) throw new VirtusError('BAD_FLAG', "web: --root disk is the default guest's disk; with --kernel, pass --disk FILE", { exitCode: 2 });
    const files = [servedFile('kernel', v.kernel)];
    if (v.initrd) files.push(servedFile('initrd', v.initrd));
    if (v.disk) files.push(servedFile('disk', v.disk));
    return { title: basename(v.kernel), files };
  }
  if (v.initrd) throw new VirtusError('BAD_FLAG', 'web: --initrd needs --kernel FILE', { exitCode: 2 });
  const g = await ensureDefaultGuest({ progress: stderrProgress() });
  const files = [servedFile('kernel', g.kernel), servedFile('initrd', g.initrd)];
  // The pristine image: the browser keeps its own working copy (OPFS), as run keeps root.img.
  if (v.root) files.push(servedFile('disk', g.rootfs));
  else if (v.disk) files.push(servedFile('disk', v.disk));
  return { title: `Linux ${g.release} (Debian ${g.version})`, files, ...(v.root ? { root: '/dev/vda' } : {}) };
}

function parsePort(text: string | undefined): number {
  if (text === undefined) return DEFAULT_PORT;
  const port = parseCount(text, '--port');
  if (port > 65535) throw new VirtusError('BAD_FLAG', `--port: ${port} is not a TCP port (0-65535)`, { exitCode: 2 });
  return port;
}

export const webCommand: Command = {
  name: 'web',
  summary: 'serve a page that runs the machine in a browser tab',
  async run(argv) {
    const { values: v } = parseFlags('web', argv, OPTIONS);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    const port = parsePort(v.port);
    const engine = v.engine ?? 'jit';
    if (engine !== 'jit' && engine !== 'interp') throw new VirtusError('BAD_FLAG', `web: --engine must be jit or interp, not "${engine}"`, { exitCode: 2 });
    const con = v.console ?? (v.kernel ? 'serial' : 'virtio');
    if (con !== 'serial' && con !== 'virtio') throw new VirtusError('BAD_FLAG', `web: --console must be serial or virtio, not "${con}"`, { exitCode: 2 });
    const ramSize = parseSize(v.memory ?? '512M', '--memory', 'M');
    const guest = await guestFiles(v);
    const assets = await bundleBrowser();
    const manifest: GuestManifest = {
      title: guest.title,
      append: v.append ?? DEFAULT_APPEND,
      ramSize,
      console: con,
      engine,
      ...(guest.root ? { root: guest.root } : {}),
      files: Object.fromEntries(guest.files.map((f) => [f.role, { url: `/guest/${f.role}`, name: f.name, size: f.size, version: f.version }])),
    };
    const server = createServer((req, res) => serve(req, res, { assets, manifest, files: guest.files, isolate: !v['no-isolation'] }));
    const bound = await listen(server, port);
    console.log(`virtus: serving ${guest.title} on http://localhost:${bound}/ (Ctrl-C stops)`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        server.closeAllConnections();
        server.close(() => resolve());
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    return 0;
  },
};

/** Listens on localhost; a port in use becomes one line, not a stack trace. Returns the port. */
function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new VirtusError('PORT_IN_USE', `web: port ${port} is in use (pick another with --port)`));
      else if (e.code === 'EACCES') reject(new VirtusError('PORT_DENIED', `web: not allowed to listen on port ${port} (pick another with --port)`));
      else reject(new VirtusError('LISTEN', `web: cannot listen on port ${port}: ${e.message}`));
    });
    server.listen(port, '127.0.0.1', () => {
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

interface Site {
  assets: Map<string, Asset>;
  manifest: GuestManifest;
  files: ServedFile[];
  isolate: boolean;
}

function serve(req: IncomingMessage, res: ServerResponse, site: Site): void {
  if (site.isolate) {
    // Cross-origin isolation: the page may then create SharedArrayBuffers (shared guest RAM).
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
  }
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    return;
  }
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const asset = site.assets.get(path === '/index.html' ? '/' : path);
  if (asset) {
    // The page is rebuilt at every server start: revalidate, never serve a stale bundle.
    res.writeHead(200, { 'Content-Type': asset.type, 'Content-Length': asset.body.length, 'Cache-Control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
    return;
  }
  if (path === '/favicon.ico') {
    res.writeHead(204).end();
    return;
  }
  if (path === '/guest/manifest.json') {
    const body = JSON.stringify(site.manifest);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  const file = site.files.find((f) => path === `/guest/${f.role}`);
  if (file) {
    sendFile(req, res, file);
    return;
  }
  res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
}

function sendFile(req: IncomingMessage, res: ServerResponse, file: ServedFile): void {
  let size;
  try {
    size = statSync(file.path).size;
  } catch {
    res.writeHead(410, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${file.name} is gone from the host\n`);
    return;
  }
  // The page keeps its own copy (Cache API) keyed by the version; the HTTP cache need not.
  res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': size,
    'Cache-Control': 'no-store',
    ETag: `"${file.version}"`,
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const stream = createReadStream(file.path);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}
