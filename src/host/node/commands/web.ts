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
import type { Duplex } from 'node:stream';
import { basename } from 'node:path';
import { VirtusError } from '../../../util/errors.ts';
import { TAB_SHARE, type MachineSpec } from '../../../vmm/spec.ts';
import { parseCount, parseFlags, type Command } from '../command.ts';
import { MACHINE_OPTIONS, specFromFlags, type MachineFlags } from '../machine-flags.ts';
import { toVirtusArgs } from '../qemu-args.ts';
import { nodeSpecSources } from '../spec-sources.ts';
import { ensureDefaultGuest } from '../guest/fetch.ts';
import { stderrProgress } from '../guest/progress.ts';
import { bundleBrowser, type Asset } from './web-bundle.ts';
import { loadExecBusybox, type ExecBusybox } from './web-exec.ts';
import { systemResolver } from '../net/nat-host.ts';
import { acceptWebSocket, serveWisp } from '../net/wisp-server.ts';
import { relayFrames } from '../net/frame-relay.ts';

const HELP = `usage: virtus web [options]

Serves a page on http://localhost:PORT/ that boots a RISC-V machine inside the
browser tab, with a terminal for its console and a panel of the monitor's
counters. Without --kernel it serves the default guest (see 'virtus guest').
The browser caches the guest's files, so a second visit downloads nothing.

The machine takes run's flags (see 'virtus run --help'), as far as a browser tab
can have them: a kernel and initrd, one disk (--drive file=FILE or --root disk:
the guest sees it as /dev/vda, and its writes are kept in the browser's OPFS, not
in FILE), the console (virtio-console by default for the default guest, the UART
with --kernel and for kernels dropped on the page), --append, --memory,
--engine (a page URL's ?engine=jit or ?engine=interp overrides it),
--deterministic, and NICs: the user NAT (--nic user[,net=...,restrict=on]) runs
in the tab and its TCP, UDP and DNS go out through this server (a Wisp relay on a
WebSocket); a stream link (--nic switch=unix:PATH, --netdev stream,server=off,...)
is connected by this server, which carries the tab's frames to it. Only this
server's own pages may use either. The default guest also gets a shared folder
held in the tab's memory (9p tag "tab", mounted at /mnt/tab, at most 256 MiB):
files dropped on the page go there, and the page's Files panel downloads what
the guest writes there.

The page at /exec runs a riscv64 busybox shell in the tab with no kernel: the
process VM of 'virtus exec' in a Web Worker over a file tree in the tab's
memory, with the default guest's busybox.

  --port N, -p N       TCP port on localhost (default 8080; 0 picks a free one)
  --no-isolation       leave out the COOP/COEP headers: the page is not
                       cross-origin isolated and guest RAM is ordinary memory
  -h, --help           show this help

Stop the server with Ctrl-C.`;

const OPTIONS = {
  ...MACHINE_OPTIONS,
  port: { type: 'string', short: 'p' },
  'no-isolation': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const DEFAULT_PORT = 8080;
/** Where the tab's network relay (Wisp over a WebSocket) is served: browser/net.ts connects there. */
export const WISP_PATH = '/wisp/';
/** Where NIC N's frames are carried (browser/net.ts): LINK_PATH + N + '/'. */
export const LINK_PATH = '/link/';

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
  /** The machine; its files name the served files by their names. */
  spec: MachineSpec;
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

/**
 * The machine the flags describe, as a tab can run it: its files become served files, named in
 * the spec by their names. What a tab cannot have is refused with one line.
 */
async function tabMachine(v: MachineFlags & { port?: string }): Promise<{ title: string; spec: MachineSpec; files: ServedFile[] }> {
  const no = (what: string): VirtusError => new VirtusError('BAD_FLAG', `web: ${what}`, { exitCode: 2 });
  const sources = nodeSpecSources();
  // The default guest's shell follows the window's size on virtio-console.
  const spec = await specFromFlags({ ...v, console: v.console ?? (v.kernel ? 'serial' : 'virtio') }, 'web', {
    ...sources,
    // The pristine image: the browser keeps its own working copy (OPFS), as run keeps root.img.
    rootDisk: async () => (await ensureDefaultGuest({ progress: stderrProgress() })).rootfs,
    image: undefined,
  });
  if (spec.boot.mode !== 'builtin') throw no('a browser tab boots with the built-in SBI: drop --bios');
  if (spec.devices.shares.length) throw no('a browser tab cannot share host folders (--share)');
  if (spec.devices.nics.length > 4) throw no(`a browser tab has up to 4 NICs, not ${spec.devices.nics.length}`);
  if (spec.devices.nics.filter((n) => n.backend.type === 'user').length > 1) throw no('a browser tab has one user NAT');
  for (const nic of spec.devices.nics) {
    const b = nic.backend;
    if (b.type === 'dgram' || (b.type === 'stream' && b.server)) {
      throw no('a browser tab reaches the network through this server: --nic user, or a stream link this server connects (switch=, stream with server=off)');
    }
    if (b.type !== 'user') continue;
    if (b.hostfwd.length) throw no('a browser tab cannot listen on host ports: drop hostfwd=');
    if (b.wisp) throw no('the tab relays through this server: drop wisp=');
    // DNS goes through the relay to this host's resolver.
    if (!b.resolver) b.resolver = `${systemResolver() ?? '127.0.0.1'}:53`;
  }
  // The default guest mounts the tab's folder (vm-host.ts) itself; a user's own kernel has exactly the devices its flags name.
  if (v.kernel === undefined) spec.devices.shares = [{ path: TAB_SHARE.tag, tag: TAB_SHARE.tag, readonly: false }];
  if (spec.devices.disks.length > 1) throw no(`a browser tab attaches one disk, not ${spec.devices.disks.length}`);
  const disk = spec.devices.disks[0];
  if (disk && disk.overlay !== undefined) throw no("the tab keeps a disk's writes in the browser (OPFS): drop overlay= and -snapshot");
  const files = [servedFile('kernel', spec.boot.kernel!)];
  if (spec.boot.initrd !== undefined) files.push(servedFile('initrd', spec.boot.initrd));
  if (disk) files.push(servedFile('disk', disk.file));
  const named = (role: ServedFile['role']): string => files.find((f) => f.role === role)!.name;
  spec.boot.kernel = named('kernel');
  if (spec.boot.initrd !== undefined) spec.boot.initrd = named('initrd');
  if (disk) disk.file = named('disk');
  let title = basename(v.kernel ?? '');
  if (v.kernel === undefined) {
    const g = await ensureDefaultGuest({ progress: stderrProgress() });
    title = `Linux ${g.release} (Debian ${g.version})`;
  }
  return { title, spec, files };
}

/**
 * The tab's network, on this server's WebSocket endpoints (only its own pages may open them):
 * WISP_PATH relays the user NAT's TCP and UDP; LINK_PATH + N + '/' carries NIC N's frames to
 * the stream peer the command line named (the server connects; the page names nothing).
 */
function routeUpgrades(server: Server, spec: MachineSpec): void {
  const log = (line: string): void => void process.stderr.write(line + '\n');
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const link = new RegExp(`^${LINK_PATH}(\\d)/$`).exec(path);
    const nic = link ? spec.devices.nics[Number(link[1])] : undefined;
    if (path !== WISP_PATH && nic?.backend.type !== 'stream') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    const ws = acceptWebSocket(req, socket, head, sameOrigin);
    if (!ws) return;
    if (nic?.backend.type === 'stream') relayFrames(ws, nic.backend.addr, log);
    else serveWisp(ws, { log });
  });
}

/** True for a page of this server: its Origin names the host the request was sent to. */
function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined || host === undefined || !/^https?:\/\//.test(origin)) return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
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
    const { values: v } = parseFlags('web', toVirtusArgs('web', argv, OPTIONS), OPTIONS);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    const port = parsePort(v.port);
    const guest = await tabMachine(v);
    const assets = await bundleBrowser();
    const manifest: GuestManifest = {
      title: guest.title,
      spec: guest.spec,
      files: Object.fromEntries(guest.files.map((f) => [f.role, { url: `/guest/${f.role}`, name: f.name, size: f.size, version: f.version }])),
    };
    const site: Site = { assets, manifest, files: guest.files, isolate: !v['no-isolation'], busybox: once(loadExecBusybox) };
    const server = createServer((req, res) => serve(req, res, site));
    if (guest.spec.devices.nics.length) routeUpgrades(server, guest.spec);
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
  /** The exec page's busybox (made at its first request). */
  busybox: () => Promise<ExecBusybox>;
}

/** Memoizes a load; a failed one is tried again at the next call. */
function once<T>(load: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | null = null;
  return () => (p ??= load().catch((e: unknown) => {
    p = null;
    throw e;
  }));
}

/** The exec page's busybox and its manifest (src/host/browser/exec/protocol.ts ExecManifest). */
async function serveBusybox(req: IncomingMessage, res: ServerResponse, site: Site, path: string): Promise<void> {
  let bb: ExecBusybox;
  try {
    bb = await site.busybox();
  } catch (e) {
    res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${(e as Error).message}\n`);
    return;
  }
  const body = path === '/exec/busybox'
    ? bb.bytes
    : JSON.stringify({ busybox: { url: '/exec/busybox', name: bb.name, size: bb.bytes.length, version: bb.version }, applets: bb.applets });
  const type = path === '/exec/busybox' ? 'application/octet-stream' : 'application/json';
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
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
  if (path === '/exec/manifest.json' || path === '/exec/busybox') {
    void serveBusybox(req, res, site, path);
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
