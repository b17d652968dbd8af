/**
 * Test support for the image repository: Debian's docker-registry (the reference
 * implementation of the distribution API) started on loopback in a temporary directory,
 * a small HTTP proxy in front of it that can cut a download mid-blob or demand a bearer
 * token, and the virtus CLI run asynchronously (the proxy lives in the test process).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import http from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VIRTUS } from '../support/toolchain.ts';

/** Throws the Debian package to install when a tool is missing. */
export function requireTool(tool: string, pkg: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${tool} is not installed (Debian package ${pkg}); .ci/run installs it`);
}

/** A free TCP port on 127.0.0.1 (free when asked; the registry takes it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A scratch directory removed at the end. */
export function scratch(prefix = 'virtus-repo-'): { dir: string; path(p: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, path: (p) => join(dir, p), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface AccessLine {
  method: string;
  path: string;
  status: number;
}

export interface Registry {
  /** 127.0.0.1:PORT */
  host: string;
  /** The registry's storage directory. */
  root: string;
  /** Requests so far, from the registry's access log. */
  requests(): AccessLine[];
  /** The file holding a blob in the registry's storage (to tamper with it). */
  blobFile(digest: string): string;
  stop(): Promise<void>;
}

async function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const r = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode === 200 || res.statusCode === 401);
    });
    r.on('error', () => resolve(false));
    r.setTimeout(1000, () => r.destroy());
  });
}

/** Starts docker-registry on a free loopback port; `htpasswd` (file contents) turns on basic auth. */
export async function startRegistry(dir: string, o: { htpasswd?: string } = {}): Promise<Registry> {
  requireTool('docker-registry', 'docker-registry');
  const port = await freePort();
  const root = join(dir, 'storage');
  mkdirSync(root, { recursive: true });
  const log = join(dir, 'registry.log');
  const auth = o.htpasswd !== undefined ? `auth:\n  htpasswd:\n    realm: virtus-test\n    path: ${join(dir, 'htpasswd')}\n` : '';
  if (o.htpasswd !== undefined) writeFileSync(join(dir, 'htpasswd'), o.htpasswd);
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: ${root}\n  delete:\n    enabled: true\n` +
      `http:\n  addr: 127.0.0.1:${port}\n${auth}`,
  );
  const out = { text: '' };
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (b: Buffer) => (out.text += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out.text += b.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  const host = `127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  while (!(await answers(`http://${host}/v2/`))) {
    if (exited || Date.now() > deadline) {
      child.kill();
      throw new Error(`docker-registry did not start on ${host}:\n${out.text}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    root,
    requests() {
      writeFileSync(log, out.text);
      const lines: AccessLine[] = [];
      for (const m of out.text.matchAll(/"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3})/g)) lines.push({ method: m[1]!, path: m[2]!, status: Number(m[3]) });
      return lines;
    },
    blobFile(digest) {
      const hex = digest.slice('sha256:'.length);
      return join(root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    },
    stop() {
      return new Promise((resolve) => {
        if (exited) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    },
  };
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the virtus CLI without blocking the event loop (the proxy answers meanwhile). */
export function virtus(args: string[], env: Record<string, string>): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [VIRTUS, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The store's index entries: ref name -> manifest digest. */
export function storeIndex(storeRoot: string): Map<string, string> {
  const x = JSON.parse(readFileSync(join(storeRoot, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations: Record<string, string> }[] };
  return new Map(x.manifests.map((m) => [m.annotations['org.opencontainers.image.ref.name']!, m.digest]));
}

export interface ProxyLog {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

export interface ProxyOptions {
  /** Cut the connection after half of this blob's body, the first time it is fetched. */
  cutBlob?: string;
  /** Demand a bearer token, issued by /token to these credentials. */
  bearer?: { username: string; password: string };
}

export interface Proxy {
  host: string;
  log: ProxyLog[];
  /** The scopes /token was asked for. */
  scopes: string[];
  close(): Promise<void>;
}

/** An HTTP proxy in front of a registry (keeping the Host header, so Locations point back to it). */
export async function startProxy(target: string, o: ProxyOptions = {}): Promise<Proxy> {
  const log: ProxyLog[] = [];
  const scopes: string[] = [];
  let cut = false;
  const token = 'test-token-' + Math.random().toString(36).slice(2);
  const server = http.createServer((req, res) => {
    log.push({ method: req.method!, url: req.url!, ...(req.headers.range ? { range: req.headers.range } : {}), ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    const self = req.headers.host!;
    if (o.bearer && req.url!.startsWith('/token')) {
      const u = new URL(req.url!, `http://${self}`);
      scopes.push(...u.searchParams.getAll('scope'));
      const want = `Basic ${Buffer.from(`${o.bearer.username}:${o.bearer.password}`).toString('base64')}`;
      if (req.headers.authorization !== want) {
        res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token }));
      return;
    }
    if (o.bearer && req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, {
        'Content-Type': 'application/json',
        'WWW-Authenticate': `Bearer realm="http://${self}/token",service="virtus-test",scope="repository:x:pull"`,
      });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: Number(target.split(':')[1]), method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode!, ur.headers);
      const cutting = o.cutBlob && !cut && req.method === 'GET' && req.url!.endsWith(`/blobs/${o.cutBlob}`) && ur.statusCode === 200;
      if (!cutting) {
        ur.pipe(res);
        return;
      }
      cut = true;
      const half = Math.floor(Number(ur.headers['content-length']) / 2);
      let sent = 0;
      ur.on('data', (c: Buffer) => {
        if (sent >= half) return;
        const part = c.subarray(0, half - sent);
        sent += part.length;
        res.write(part);
        if (sent >= half) {
          ur.destroy();
          // Let the half reach the client, then drop the connection mid-body.
          setTimeout(() => res.socket?.destroy(), 50);
        }
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    host: `127.0.0.1:${(server.address() as { port: number }).port}`,
    log,
    scopes,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
