/**
 * Running the host tools the guest builder needs (apt-get, dpkg-deb, xz, mke2fs), with a
 * clear one-line error naming the Debian package when one is missing.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { VirtusError } from '../../../util/errors.ts';

/** The Debian package that provides each tool, for error messages. */
export const TOOL_PACKAGES: Record<string, string> = {
  'apt-get': 'apt',
  'apt-cache': 'apt',
  'dpkg-deb': 'dpkg',
  xz: 'xz-utils',
  mke2fs: 'e2fsprogs',
  debugfs: 'e2fsprogs',
};

/**
 * Finds `tool` on PATH, and also in /usr/sbin and /sbin: a normal user's PATH on Debian
 * lacks them, yet mke2fs lives there and runs fine without root.
 */
export function findTool(tool: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, tool);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** Like findTool, but a missing tool is a VirtusError naming its package. */
export function requireTool(tool: string, purpose: string): string {
  const p = findTool(tool);
  if (p) return p;
  throw new VirtusError('GUEST_TOOL', `${purpose} needs ${tool} (Debian package ${TOOL_PACKAGES[tool] ?? tool}), which is not installed`);
}

export interface ExecResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with each complete line the tool writes to stdout (for progress). */
  onLine?: (line: string) => void;
}

/** Runs a tool to completion; never rejects for a non-zero exit (the caller reads `code`). */
export function exec(path: string, args: string[], o: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    let partial = '';
    child.stdout.on('data', (b: Buffer) => {
      out.push(b);
      if (!o.onLine) return;
      const lines = (partial + b.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) o.onLine(l);
    });
    child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
    child.on('error', (e) => reject(new VirtusError('GUEST_TOOL', `cannot run ${path}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (o.onLine && partial) o.onLine(partial);
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out), stderr: err });
    });
  });
}

/** The last non-empty lines of a tool's stderr, joined, for a one-line error. */
export function lastLines(text: string, n = 2): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines.slice(-n).join(' / ') || '(no message)';
}
