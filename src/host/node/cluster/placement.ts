/**
 * Where machines go: pure decisions over one read of the cluster. A machine goes to the
 * schedulable node with the most free memory that can hold it (free = the node's limit minus
 * the memory of the machines assigned to it or on their way to it), ties broken by name, so a
 * placement can be predicted from the same facts. A rebalance moves one machine at a time off
 * the fullest node above the threshold (its biggest machine that fits first), to the node with the
 * most free memory among those that stay at or below it.
 */
import { committedMemory, schedulable, type ClusterState } from './state.ts';

/** Free memory of a live node (bytes; negative when over-committed). */
export function freeMemory(s: ClusterState, node: string): number {
  const n = s.nodes.get(node);
  return n ? n.value.maxMemory - committedMemory(s, node) : 0;
}

/** The node for a machine of `memory` bytes (none of `exclude`), or null when none has room. */
export function pickNode(s: ClusterState, memory: number, exclude: readonly string[] = []): string | null {
  let best: string | null = null;
  let bestFree = -Infinity;
  for (const n of schedulable(s)) {
    if (exclude.includes(n)) continue;
    const free = freeMemory(s, n);
    if (free >= memory && free > bestFree) {
      best = n;
      bestFree = free;
    }
  }
  return best;
}

/** The share of its limit a node has committed. */
export function load(s: ClusterState, node: string): number {
  const max = s.nodes.get(node)?.value.maxMemory ?? 0;
  return max > 0 ? committedMemory(s, node) / max : 0;
}

/** The next move of a rebalance: null when no node is above `threshold`, 'stuck' when one is but nothing can move. */
export function rebalanceStep(s: ClusterState, threshold: number): { vm: string; from: string; to: string } | null | 'stuck' {
  const over = [...s.nodes.keys()].filter((n) => load(s, n) > threshold + 1e-9).sort((a, b) => load(s, b) - load(s, a) || a.localeCompare(b));
  if (!over.length) return null;
  for (const from of over) {
    const machines = [...s.assigns].filter(([name, a]) => a.value.node === from && !s.moves.has(name) && s.vms.has(name))
      .map(([name]) => ({ name, memory: s.vms.get(name)!.value.spec.memory }))
      .sort((a, b) => b.memory - a.memory || a.name.localeCompare(b.name));
    const targets = schedulable(s).filter((n) => n !== from).sort((a, b) => freeMemory(s, b) - freeMemory(s, a) || a.localeCompare(b));
    for (const m of machines) {
      const to = targets.find((n) => (committedMemory(s, n) + m.memory) / s.nodes.get(n)!.value.maxMemory <= threshold + 1e-9);
      if (to) return { vm: m.name, from, to };
    }
  }
  return 'stuck';
}
