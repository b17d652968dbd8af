/**
 * The host's apt sources, read to find the Debian mirror it is configured to use: the guest
 * is fetched from the same mirror (and through the same apt configuration, proxies
 * included), so virtus never names a mirror itself.
 *
 * Both formats are read: deb822 `.sources` files (apt's sources.list(5), "DEB822-STYLE
 * FORMAT") and one-line `deb [options] uri suite components` entries.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One `deb` entry of the host's sources. */
export interface AptSource {
  uri: string;
  suites: string[];
  /** A keyring file the entry names with Signed-By / signed-by, if any. */
  signedBy?: string;
  /** The file the entry came from (for messages). */
  file: string;
}

/** Parses deb822 stanzas; entries with `Enabled: no` and non-`deb` types are left out. */
export function parseDeb822(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n[ \t]*\n/)) {
    const fields = new Map<string, string>();
    let last = '';
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      if (/^[ \t]/.test(raw) && last) {
        fields.set(last, `${fields.get(last)}\n${raw.trim()}`); // continuation line
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
      if (!m) continue;
      last = m[1]!.toLowerCase();
      fields.set(last, m[2]!.trim());
    }
    const types = (fields.get('types') ?? '').split(/\s+/);
    if (!types.includes('deb') || /^(no|false|0)$/i.test(fields.get('enabled') ?? 'yes')) continue;
    const suites = (fields.get('suites') ?? '').split(/\s+/).filter(Boolean);
    const signed = fields.get('signed-by');
    // Signed-By may hold a whole key block; only a single path is reused.
    const signedBy = signed && /^\/\S+$/.test(signed) ? signed : undefined;
    for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter(Boolean)) {
      out.push({ uri, suites, signedBy, file });
    }
  }
  return out;
}

/** Parses one-line entries: `deb [key=value ...] uri suite [component ...]`. */
export function parseOneLine(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (!m) continue;
    const opts = m[1] ?? '';
    const signedBy = /(?:^|\s)signed-by=(\/\S+)/.exec(opts)?.[1];
    out.push({ uri: m[2]!, suites: [m[3]!], signedBy, file });
  }
  return out;
}

/** Reads every source the host's apt uses (sources.list, sources.list.d/*.list and *.sources). */
export function readHostSources(etc = '/etc/apt'): AptSource[] {
  const out: AptSource[] = [];
  const main = join(etc, 'sources.list');
  if (existsSync(main)) out.push(...parseOneLine(readFileSync(main, 'utf8'), main));
  const dir = join(etc, 'sources.list.d');
  let names: string[] = [];
  try {
    names = readdirSync(dir).sort();
  } catch {
    // no sources.list.d
  }
  for (const n of names) {
    const p = join(dir, n);
    try {
      if (n.endsWith('.sources')) out.push(...parseDeb822(readFileSync(p, 'utf8'), p));
      else if (n.endsWith('.list')) out.push(...parseOneLine(readFileSync(p, 'utf8'), p));
    } catch {
      // unreadable file: apt would complain about it itself; it is not ours to judge
    }
  }
  return out;
}

/**
 * The mirrors worth trying for Debian unstable, best first: URIs of entries that carry a
 * release's main suite (a plain name such as "bookworm" or "sid"), not only security,
 * updates or backports suites, which live elsewhere or carry no unstable. Duplicates go.
 */
export function mirrorCandidates(sources: AptSource[]): AptSource[] {
  const seen = new Set<string>();
  const out: AptSource[] = [];
  for (const s of sources) {
    if (!/^(https?|ftp|file|mirror(\+\w+)?):/.test(s.uri)) continue;
    if (!s.suites.some((x) => /^[a-z]+$/.test(x))) continue;
    const key = s.uri.replace(/\/+$/, '');
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ ...s, uri: key });
  }
  return out;
}
