/**
 * `virtus cluster` and `virtus daemon --cluster` refuse what they cannot do with one line and
 * exit code 2 (bad flags) or 1 (an etcd that does not answer: a closed loopback port), never a
 * stack trace.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { VIRTUS } from '../support/toolchain.ts';
import { freePort } from '../net/support.ts';
import { scratch } from './support.ts';

function virtus(args: string[], env: Record<string, string> = {}) {
  const e = { ...process.env, ...env };
  delete e.VIRTUS_CLUSTER;
  return spawnSync(process.execPath, [VIRTUS, ...args], { encoding: 'utf8', env: { ...e, ...env }, timeout: 30_000 });
}

describe('cluster: the CLI refuses with one line', () => {
  it('bad flags and subcommands exit 2', () => {
    const cases: Array<[string[], RegExp]> = [
      [['cluster', 'drain'], /^virtus: cluster: drain: name one node \(virtus cluster drain NODE\)$/],
      [['cluster', 'drain', 'a'], /^virtus: cluster: name the cluster: --cluster etcd:\/\/HOST:PORT\[,\.\.\.\] \(or set VIRTUS_CLUSTER\)$/],
      [['cluster', 'uncordon', 'a', 'b', '--cluster', 'etcd://127.0.0.1:2379'], /^virtus: cluster: uncordon: name one node/],
      [['cluster', 'rebalance', '--threshold', '0', '--cluster', 'etcd://127.0.0.1:2379'], /^virtus: cluster: rebalance: --threshold 0: a percentage above 0, at most 100$/],
      [['cluster', 'rebalance', '--threshold', '150%', '--cluster', 'etcd://127.0.0.1:2379'], /^virtus: cluster: rebalance: --threshold 150%/],
      [['cluster', 'status', '--cluster', 'http://127.0.0.1:2379'], /^virtus: --cluster: expected etcd:\/\/HOST:PORT\[,HOST:PORT\.\.\.\], not "http:\/\/127\.0\.0\.1:2379"$/],
      [['cluster', 'drain', 'a', '--cluster', 'etcd://127.0.0.1:99999'], /^virtus: --cluster: "127\.0\.0\.1:99999" is not HOST:PORT$/],
      [['cluster', 'frob'], /^virtus: cluster: unknown subcommand 'frob'/],
      [['daemon', '--node', 'a'], /^virtus: daemon: --node, --lease-ttl and --address go with --cluster$/],
      [['daemon', '--cluster', 'etcd://127.0.0.1:2379', '--lease-ttl', '1'], /^virtus: daemon: --lease-ttl 1: whole seconds from 2 to 3600$/],
      [['daemon', '--cluster', 'etcd://127.0.0.1:2379', '--node', 'a/b'], /^virtus: daemon: --node "a\/b": use letters, digits/],
    ];
    for (const [args, re] of cases) {
      const r = virtus(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr.trim(), re, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line`);
    }
  });

  it('an etcd that does not answer is one line and exit 1, for the CLI and for a daemon', async () => {
    const url = `etcd://127.0.0.1:${await freePort()}`;
    for (const args of [['cluster', 'status'], ['cluster', 'drain', 'a'], ['cluster', 'start', 'w1']]) {
      const r = virtus(args, { VIRTUS_CLUSTER: url });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /^virtus: [a-z ]+: etcd did not answer \(.*\); is the cluster up and --cluster right\?\n$/);
    }
    const s = scratch('virtus-cluster-cli-');
    try {
      const r = virtus(['daemon', '--state-dir', s.path('state'), '--cluster', url, '--node', 'a']);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /^virtus: cluster: cannot join as a: etcd did not answer/m);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      s.cleanup();
    }
  });
});
