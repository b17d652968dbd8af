/**
 * An etcd transaction as the cluster writes them: conditions on what was read (a record is
 * unchanged since revision R, a key is absent, a node is alive), then puts and deletes that
 * happen together only if every condition holds. Nothing in the cluster is written otherwise,
 * so two writers that decided from the same read cannot both win.
 */
import type { Etcd3 } from 'etcd3';

type Compare = [key: string, column: 'Mod' | 'Version', cmp: '==' | '>', value: number | string];

/** One transaction (see the file's comment). */
export class Txn {
  private readonly compares: Compare[] = [];
  private readonly ops: Array<(c: Etcd3) => Parameters<ReturnType<Etcd3['if']>['then']>[0]> = [];

  constructor(private readonly client: Etcd3) {}

  /** The key was last written at `rev` (and still exists). */
  unchanged(key: string, rev: string): this {
    this.compares.push([key, 'Mod', '==', rev]);
    return this;
  }

  /** The key does not exist. */
  absent(key: string): this {
    this.compares.push([key, 'Version', '==', 0]);
    return this;
  }

  /** The key exists (for a node's key: the node's lease holds). */
  present(key: string): this {
    this.compares.push([key, 'Version', '>', 0]);
    return this;
  }

  /** Writes `value` as JSON (under `lease` when given). */
  put(key: string, value: unknown, lease?: string): this {
    this.ops.push((c) => {
      const p = c.put(key).value(JSON.stringify(value));
      return lease === undefined ? p : p.lease(lease);
    });
    return this;
  }

  del(key: string): this {
    this.ops.push((c) => c.delete().key(key));
    return this;
  }

  /** Runs it; true when the conditions held and the writes were made. */
  async commit(): Promise<boolean> {
    const [first, ...rest] = this.compares;
    if (!first) throw new Error('a cluster transaction needs a condition');
    let t = this.client.if(...first);
    for (const c of rest) t = t.and(...c);
    const r = await t.then(...this.ops.map((o) => o(this.client))).commit();
    return r.succeeded;
  }
}
