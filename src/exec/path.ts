/**
 * Path resolution inside the guest's root (path_resolution(7) with the root as `/`): `.` and
 * `..` are taken component by component and `..` at the root stays there; a symbolic link is
 * read and its target resolved in its place, an absolute target from the root, so no chain of
 * links reaches outside. At most 40 links are followed (ELOOP, as Linux's MAXSYMLINKS).
 */
import { E, S_IFDIR, S_IFLNK, S_IFMT } from './abi.ts';
import type { ExecHost, ExecStat } from './host.ts';

const MAX_LINKS = 40;
const PATH_MAX = 4096;

/**
 * Resolves `path` relative to the guest-absolute directory `base`. With `followLast` false a
 * symbolic link as last component is not followed. Returns the guest-absolute path (`/a/b`, or
 * `/` for the root), or -errno: ENOENT or ENOTDIR for a missing or non-directory component
 * before the last, ELOOP, ENAMETOOLONG. The last component need not exist. When `out` is given,
 * `out.st` is set to the lstat of what the returned path names if resolving took it (it was
 * there and not a link), so that the stat family need not ask the host again.
 */
export function resolvePath(host: ExecHost, base: string, path: string, followLast: boolean, out?: { st?: ExecStat }): string | number {
  if (out) out.st = undefined;
  if (path.length === 0) return -E.ENOENT;
  if (path.length >= PATH_MAX) return -E.ENAMETOOLONG;
  const trailingSlash = path.endsWith('/');
  let todo = path.split('/').filter((c) => c !== '').reverse();
  let done: string[] = path.startsWith('/') ? [] : base.split('/').filter((c) => c !== '');
  let links = 0;
  let lastSt: ExecStat | undefined;
  while (todo.length > 0) {
    const name = todo.pop()!;
    lastSt = undefined;
    if (name === '.') continue;
    if (name === '..') {
      done.pop();
      continue;
    }
    if (name.length > 255) return -E.ENAMETOOLONG;
    const here = `/${[...done, name].join('/')}`;
    const last = todo.length === 0;
    if (last && !followLast && !trailingSlash) {
      done.push(name);
      break;
    }
    const st = host.lstat(here);
    if (typeof st === 'number') {
      if (last) {
        done.push(name);
        break;
      }
      return st;
    }
    const type = st.mode & S_IFMT;
    if (type === S_IFLNK) {
      if (++links > MAX_LINKS) return -E.ELOOP;
      const target = host.readlink(here);
      if (typeof target === 'number') return target;
      if (target.length === 0) return -E.ENOENT;
      const more = target.split('/').filter((c) => c !== '').reverse();
      todo = [...todo, ...more];
      if (target.startsWith('/')) done = [];
      continue;
    }
    if (!last && type !== S_IFDIR) return -E.ENOTDIR;
    done.push(name);
    if (last) lastSt = st;
  }
  if (out) out.st = lastSt;
  return `/${done.join('/')}`;
}
