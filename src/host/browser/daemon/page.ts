/**
 * The daemon's web console (`/ui` of `virtus daemon --listen tcp:...`): the daemon's machines
 * with their state and counters, buttons that start, stop, pause, resume and snapshot them, and
 * an xterm.js terminal attached to any machine's console WebSocket; on a node of a cluster, the
 * cluster's nodes and machines too (GET /cluster). It is a client of the API
 * like the CLI: the token comes in the page's address (`/ui#token=TOKEN`) and goes with every
 * request (a header for fetch, `access_token=` for the WebSocket).
 */
import '@xterm/xterm/css/xterm.css';
import './page.css';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';

interface MachineInfo {
  id: string;
  name: string;
  state: string;
  image: string | null;
  memory: number | null;
  uptimeSeconds: number | null;
  cpuPercent: number;
}

const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';
const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  const json = text ? (JSON.parse(text) as T & { error?: { code: string; message: string } }) : ({} as T & { error?: undefined });
  if (!res.ok) throw new Error(json.error ? `${json.error.code}: ${json.error.message}` : `${res.status}`);
  return json;
}

function report(e: unknown): void {
  $('error').textContent = e instanceof Error ? e.message : String(e);
}

const uptime = (s: number | null): string => (s === null ? '-' : s < 60 ? `${Math.floor(s)}s` : s < 3600 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h`);

/** What each button does, and in which states it may. */
const ACTIONS: Array<{ label: string; when: string[]; run(m: MachineInfo): Promise<unknown> }> = [
  { label: 'start', when: ['created', 'stopped'], run: (m) => api('POST', `/vms/${m.id}/start`) },
  { label: 'stop', when: ['running', 'paused'], run: (m) => api('POST', `/vms/${m.id}/stop`, { timeout: 10 }) },
  { label: 'pause', when: ['running'], run: (m) => api('POST', `/vms/${m.id}/pause`) },
  { label: 'resume', when: ['paused'], run: (m) => api('POST', `/vms/${m.id}/resume`) },
  { label: 'snapshot', when: ['running', 'paused'], run: (m) => api('POST', `/vms/${m.id}/snapshot`, { name: `${m.name}-${Date.now()}` }) },
  { label: 'console', when: ['running', 'paused', 'stopped', 'created'], run: async (m) => attach(m) },
];

const instructions = new Map<string, number>();

/** GET /cluster, as far as the page shows it (status.ts has the whole shape). */
interface ClusterView {
  scheduler: string | null;
  nodes: Array<{ name: string; state: string; lease: { ttl: number; remaining: number } | null; committedMemory: number; maxMemory: number | null; machines: string[] }>;
  machines: Array<{ name: string; desired: string; node: string | null; observed: Array<{ node: string; state: string }>; move: { from: string; to: string; status: string } | null; restart: string; note: string | null }>;
}

const mib = (n: number | null): string => (n === null ? '-' : `${Math.round(n / 1048576)}M`);

/** One table body's rows: each a name (data-name), a state (data-state) and its cells. */
function rows(table: string, list: Array<{ name: string; state: string; cells: string[] }>, classes: string[]): void {
  $(table).querySelector('tbody')!.replaceChildren(...list.map((r) => {
    const tr = document.createElement('tr');
    tr.dataset.name = r.name;
    tr.dataset.state = r.state;
    r.cells.forEach((c, i) => {
      const td = document.createElement('td');
      td.className = classes[i]!;
      td.textContent = c;
      tr.append(td);
    });
    return tr;
  }));
}

/** The cluster panel; hidden on a daemon that is no node of a cluster. */
async function refreshCluster(): Promise<void> {
  let c: ClusterView;
  try {
    c = await api<ClusterView>('GET', '/cluster');
  } catch (e) {
    if (!(e instanceof Error && e.message.startsWith('NOT_IN_CLUSTER'))) report(e);
    return;
  }
  $('cluster').hidden = false;
  $('scheduler').textContent = c.scheduler ? `scheduler: ${c.scheduler}` : 'no scheduler';
  rows('cluster-nodes', c.nodes.map((n) => ({
    name: n.name, state: n.state,
    cells: [n.name, n.state, n.lease ? `${n.lease.remaining}/${n.lease.ttl}s` : '-', `${mib(n.committedMemory)}/${mib(n.maxMemory)}`, n.machines.join(', ') || '-'],
  })), ['name', 'state', 'lease', 'memory', 'machines']);
  rows('cluster-machines', c.machines.map((m) => ({
    name: m.name, state: m.desired,
    cells: [m.name, m.desired, m.move ? `${m.move.from} -> ${m.move.to} (${m.move.status})` : m.node ?? '-', m.observed.map((o) => `${o.node}: ${o.state}`).join(', ') || '-', m.restart, m.note ?? ''],
  })), ['name', 'desired', 'node', 'observed', 'restart', 'note']);
}

function render(machines: MachineInfo[]): void {
  const body = $('machines').querySelector('tbody')!;
  body.replaceChildren(
    ...machines.map((m) => {
      const tr = document.createElement('tr');
      tr.dataset.name = m.name;
      tr.dataset.state = m.state;
      const cells = [m.name, m.state, m.image ?? '-', m.memory === null ? '-' : `${Math.round(m.memory / 1048576)}M`, uptime(m.uptimeSeconds), m.cpuPercent.toFixed(1), String(instructions.get(m.id) ?? '-')];
      const classes = ['name', 'state', 'image', 'memory', 'uptime', 'cpu', 'instructions'];
      cells.forEach((c, i) => {
        const td = document.createElement('td');
        td.className = classes[i]!;
        td.textContent = c;
        tr.append(td);
      });
      const actions = document.createElement('td');
      actions.className = 'actions';
      for (const a of ACTIONS) {
        const b = document.createElement('button');
        b.textContent = a.label;
        b.dataset.action = a.label;
        b.disabled = !a.when.includes(m.state);
        b.onclick = () => {
          b.disabled = true;
          a.run(m).then(() => ($('error').textContent = ''), report).finally(() => void refresh());
        };
        actions.append(b);
      }
      tr.append(actions);
      return tr;
    }),
  );
}

async function refresh(): Promise<void> {
  try {
    const { machines } = await api<{ machines: MachineInfo[] }>('GET', '/vms');
    await Promise.all(
      machines
        .filter((m) => m.state === 'running' || m.state === 'paused')
        .map((m) => api<{ instructions: number }>('GET', `/vms/${m.id}/stats`).then((s) => instructions.set(m.id, s.instructions), () => {})),
    );
    render(machines);
  } catch (e) {
    report(e);
  }
  await refreshCluster();
}

const term = new Terminal({ convertEol: false, scrollback: 5000, fontSize: 14 });
const fit = new FitAddon();
term.loadAddon(fit);
let socket: WebSocket | null = null;

function attach(m: MachineInfo): void {
  socket?.close();
  term.reset();
  $('console').hidden = false;
  if (!term.element) term.open($('terminal'));
  fit.fit();
  $('console-name').textContent = m.name;
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/vms/${m.id}/console${token ? `?access_token=${token}` : ''}`);
  ws.binaryType = 'arraybuffer';
  ws.onmessage = (e) => term.write(new Uint8Array(e.data as ArrayBuffer));
  ws.onclose = () => term.write('\r\n[detached]\r\n');
  socket = ws;
  term.focus();
}

term.onData((d) => {
  if (socket?.readyState === WebSocket.OPEN) socket.send(new TextEncoder().encode(d));
});
$('detach').onclick = () => {
  socket?.close();
  socket = null;
  $('console').hidden = true;
};
addEventListener('resize', () => fit.fit());

void api<{ version: string; stateDir: string; machines: number }>('GET', '/info').then((i) => ($('daemon').textContent = `${i.stateDir} (virtus ${i.version})`), report);
void refresh();
setInterval(() => void refresh(), 2000);
