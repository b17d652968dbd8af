/**
 * Registry authentication with credentials from a Docker config file: basic auth against
 * docker-registry's htpasswd (bcrypt entries made by Apache's htpasswd), and the bearer
 * token protocol through a proxy that issues tokens for a scope.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requireTool, scratch, startProxy, startRegistry, virtus, type Registry } from './support.ts';

describe('repo: registry credentials from the Docker config file', () => {
  const s = scratch();
  let reg: Registry;
  let n = 0;
  const store = () => s.path(`store${n++}`);
  /** A DOCKER_CONFIG directory whose config.json has `auths` for `host`. */
  const dockerConfig = (host: string, user: string, password: string, asUrl = false) => {
    const dir = s.path(`docker${n++}`);
    mkdirSync(dir);
    const key = asUrl ? `https://${host}/v1/` : host;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { [key]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }));
    return dir;
  };
  const env = (st: string, docker: string) => ({ VIRTUS_IMAGE_STORE: st, DOCKER_CONFIG: docker });

  before(async () => {
    requireTool('htpasswd', 'apache2-utils');
    const entry = spawnSync('htpasswd', ['-nbB', 'alice', 's3cret'], { encoding: 'utf8' });
    assert.equal(entry.status, 0, entry.stderr);
    reg = await startRegistry(s.path('registry'), { htpasswd: entry.stdout.trim() + '\n' });
    writeFileSync(s.path('kernel'), Buffer.alloc(10_000, 7));
  });
  after(async () => {
    await reg?.stop();
    s.cleanup();
  });

  it('basic auth: refused without credentials, with wrong ones, accepted with the right ones', async () => {
    const push = (docker: string) => virtus(['image', 'push', '--kernel', s.path('kernel'), `${reg.host}/auth/m:1`], env(store(), docker));
    const none = await push(s.path('nothing'));
    assert.equal(none.status, 1);
    assert.match(none.stderr, /^virtus: 127\.0\.0\.1:\d+ needs credentials and the Docker config file has none for it/m);
    const wrong = await push(dockerConfig(reg.host, 'alice', 'wrong'));
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /refused the credentials/);
    const good = dockerConfig(reg.host, 'alice', 's3cret', true);
    const r = await push(good);
    assert.equal(r.status, 0, r.stderr);
    const pulled = await virtus(['image', 'pull', `${reg.host}/auth/m:1`], env(store(), good));
    assert.equal(pulled.status, 0, pulled.stderr);
  });

  it('bearer tokens: fetched from the realm with the credentials, for the repository scope', async () => {
    // A registry without auth of its own, behind a proxy that demands tokens it issues to bob.
    const open = await startRegistry(s.path('open-registry'));
    const proxy = await startProxy(open.host, { bearer: { username: 'bob', password: 'hunter2' } });
    try {
      const st = store();
      const denied = await virtus(['image', 'push', '--kernel', s.path('kernel'), `${proxy.host}/tok/m:1`], env(st, s.path('nothing')));
      assert.equal(denied.status, 1);
      assert.match(denied.stderr, /needs credentials/);
      const docker = dockerConfig(proxy.host, 'bob', 'hunter2');
      const r = await virtus(['image', 'push', '--kernel', s.path('kernel'), `${proxy.host}/tok/m:1`], env(st, docker));
      assert.equal(r.status, 0, r.stderr);
      assert.ok(proxy.scopes.includes('repository:tok/m:pull,push'), proxy.scopes.join(' '));
      const p = await virtus(['image', 'pull', `${proxy.host}/tok/m:1`], env(store(), docker));
      assert.equal(p.status, 0, p.stderr);
      assert.ok(proxy.scopes.includes('repository:tok/m:pull'));
      const wrong = await virtus(['image', 'pull', `${proxy.host}/tok/m:1`], env(store(), dockerConfig(proxy.host, 'bob', 'nope')));
      assert.equal(wrong.status, 1);
      assert.match(wrong.stderr, /token server refused the credentials for bob/);
    } finally {
      await proxy.close();
      await open.stop();
    }
  });
});
