/**
 * Registry credentials and authentication.
 *
 * Credentials come from the Docker client's config file when there is one
 * ($DOCKER_CONFIG/config.json, else ~/.docker/config.json): an `auths` entry for the
 * registry (its base64 "user:password" `auth`, or `username`/`password`), or a
 * credential helper named by `credHelpers`/`credsStore` (docker-credential-NAME get).
 *
 * A registry that wants authentication answers 401 with WWW-Authenticate (RFC 9110
 * 11.6.1): `Basic realm=...`, answered with the credentials, or `Bearer realm=...,
 * service=...,scope=...`, answered by fetching a token from the realm (with the
 * credentials, if any, else anonymously) for the scope this client needs and sending
 * it as `Authorization: Bearer` (the Docker registry token protocol).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { VirtusError } from '../util/errors.ts';

export interface Credentials {
  username: string;
  password: string;
}

/** One challenge of a WWW-Authenticate header: its scheme (lowercase) and parameters. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** The Docker config file's path. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json');
}

/** The host[:port] an `auths` key names: keys may be written as URLs ("https://host/v1/"). */
function keyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
}

function fromHelper(helper: string, registry: string, env: NodeJS.ProcessEnv): Credentials | null {
  const r = spawnSync(`docker-credential-${helper}`, ['get'], { input: registry, encoding: 'utf8', timeout: 30_000, env });
  if (r.error || r.status !== 0) return null; // no helper, or no credentials for this registry
  try {
    const x = JSON.parse(r.stdout) as { Username?: unknown; Secret?: unknown };
    if (typeof x.Username === 'string' && typeof x.Secret === 'string') return { username: x.Username, password: x.Secret };
  } catch {
    // a helper that prints something else has nothing for us
  }
  return null;
}

/** The credentials the Docker config file has for `registry` (host[:port]), or null. */
export function dockerCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): Credentials | null {
  const path = dockerConfigPath(env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null; // no config file: anonymous
  }
  let cfg: { auths?: Record<string, { auth?: string; username?: string; password?: string }>; credHelpers?: Record<string, string>; credsStore?: string };
  try {
    cfg = JSON.parse(text) as typeof cfg;
  } catch {
    throw new VirtusError('DOCKER_CONFIG', `${path} is not valid JSON`);
  }
  const host = registry.toLowerCase();
  const helper = cfg.credHelpers?.[host];
  if (helper) return fromHelper(helper, registry, env);
  for (const [key, entry] of Object.entries(cfg.auths ?? {})) {
    if (keyHost(key) !== host || typeof entry !== 'object' || entry === null) continue;
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const plain = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = plain.indexOf(':');
      if (colon < 0) throw new VirtusError('DOCKER_CONFIG', `${path}: the auth entry for ${key} is not base64 of user:password`);
      return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
    }
    if (typeof entry.username === 'string' && typeof entry.password === 'string') return { username: entry.username, password: entry.password };
  }
  if (cfg.credsStore) return fromHelper(cfg.credsStore, registry, env);
  return null;
}

/**
 * Parses WWW-Authenticate (RFC 9110 11.6.1): challenges separated by commas, each a scheme
 * and auth-params `name=value` or `name="quoted \"value\""`.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  const tokenAt = (i: number) => /^[A-Za-z0-9!#$%&'*+.^_`|~/-]+/.exec(header.slice(i))?.[0] ?? '';
  let i = 0;
  while (i < header.length) {
    while (i < header.length && /[\s,]/.test(header[i]!)) i++;
    const name = tokenAt(i);
    if (!name) break;
    i += name.length;
    let j = i;
    while (j < header.length && header[j] === ' ') j++;
    if (header[j] !== '=' || out.length === 0) {
      out.push({ scheme: name.toLowerCase(), params: {} }); // a new challenge
      continue;
    }
    i = j + 1;
    while (header[i] === ' ') i++;
    let value = '';
    if (header[i] === '"') {
      for (i++; i < header.length && header[i] !== '"'; i++) value += header[i] === '\\' ? header[++i] ?? '' : header[i];
      i++;
    } else {
      const v = /^[^\s,]*/.exec(header.slice(i))![0];
      value = v;
      i += v.length;
    }
    out[out.length - 1]!.params[name.toLowerCase()] = value;
  }
  return out;
}

/** `Authorization: Basic` for credentials. */
export function basicAuth(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}
