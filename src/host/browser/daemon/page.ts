/**
 * The daemon's web console (`/ui` of `virtus daemon --listen tcp:...`): the daemon's machines
 * with their state and counters, buttons that start, stop, pause, resume and snapshot them, and
 * an xterm.js terminal attached to any machine's console WebSocket; on a node of a cluster, the
 * cluster's nodes and machines too (GET /cluster). It is a client of the API
 * like the CLI: the token comes in the page's address (`/ui#token=TOKEN`) and goes with every
 * request (a header for fetch, `access_token=` for the WebSocket).
 *
 * A machine without disks, shared folders and NICs moves into the tab, live ("to tab"): the
 * page starts the machine worker of `virtus web` (/ui/worker.js), which receives it over the
 * daemon's to-tab WebSocket and runs it; the terminal then is its console, with the output it
 * had in the daemon above. "back" migrates it to the daemon's from-tab WebSocket, where it runs
 * on under its name (host/node/daemon/tab-move.ts). Progress shows beside the terminal.
 */
import '@xterm/xterm/css/xterm.css';
import './page.css';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { MachineWorker } from '../machine-worker.ts';

interface MachineInfo {
  id: string;
  name: string;
  state: string;
  image: string | null;
  memory: number | null;
  uptimeSeconds: number | null;
  cpuPercent: number;
  stop: { reason: string } | null;
  migration: { status: string; target?: string; rounds?: number; bytes?: number; error?: string } | null;
}

/** What `migratedTo` and a migration's target say of a machine that moved into a tab (daemon/machine.ts). */
const IN_A_TAB = 'a browser tab';

/** What scripts and tests see as `window.virtusUi`. */
export interface DaemonUiApi {
  /** Every line the terminal holds, its scrollback included. */
  screenText(): string;
  /** The name of the machine running in this tab, if one does. */
  tabMachine(): string | null;
}

declare global {
  interface Window {
    virtusUi: DaemonUiApi;
  }
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
  { label: 'to tab', when: ['running', 'paused'], run: (m) => moveToTab(m) },
];

/** A machine as the table shows its state: one that moved into a tab says so. */
const shownState = (m: MachineInfo): string => (m.state === 'stopped' && m.stop?.reason === 'migrated' && m.migration?.target === IN_A_TAB ? 'in a tab' : m.state);

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
      const cells = [m.name, shownState(m), m.image ?? '-', m.memory === null ? '-' : `${Math.round(m.memory / 1048576)}M`, uptime(m.uptimeSeconds), m.cpuPercent.toFixed(1), String(instructions.get(m.id) ?? '-')];
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
        b.dataset.action = a.label.replace(' ', '-');
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

/** The daemon's WebSocket at `path`, with the token (a browser cannot send headers with one). */
function wsUrl(path: string, query = ''): string {
  const q = [query, token ? `access_token=${token}` : ''].filter(Boolean).join('&');
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}${q ? `?${q}` : ''}`;
}

function showConsole(name: string): void {
  $('console').hidden = false;
  if (!term.element) term.open($('terminal'));
  fit.fit();
  $('console-name').textContent = name;
}

function attach(m: MachineInfo): void {
  if (tab) throw new Error(`${tab.name} runs in this tab: its terminal is this one (move it back first)`);
  socket?.close();
  term.reset();
  showConsole(m.name);
  const ws = new WebSocket(wsUrl(`/vms/${m.id}/console`));
  ws.binaryType = 'arraybuffer';
  ws.onmessage = (e) => term.write(new Uint8Array(e.data as ArrayBuffer));
  ws.onclose = () => term.write('\r\n[detached]\r\n');
  socket = ws;
  term.focus();
}

/** The machine that moved into this tab: its worker and the daemon machine it is. */
let tab: { worker: MachineWorker; id: string; name: string; leaving: boolean } | null = null;

function status(text: string): void {
  $('move-status').textContent = text;
}

const mibs = (n = 0): string => `${(n / 1048576).toFixed(1)} MiB`;

/** Moves `m` into this tab, live; resolves once it runs here. */
function moveToTab(m: MachineInfo): Promise<void> {
  if (tab) return Promise.reject(new Error(`${tab.name} already runs in this tab: move it back first`));
  socket?.close();
  socket = null;
  term.reset();
  showConsole(`${m.name} (in this tab)`);
  status(`moving ${m.name} into this tab`);
  return new Promise((resolve, reject) => {
    let started = false;
    const w: MachineWorker = new MachineWorker({
      output: (b) => term.write(b),
      stats: () => {},
      started: () => {
        started = true;
        tab = { worker: w, id: m.id, name: m.name, leaving: false };
        $('move-back').hidden = false;
        status(`${m.name} runs in this tab`);
        term.focus();
        resolve();
      },
      state: (state, reason) => {
        if (state !== 'stopped') return;
        const left = tab?.worker === w && tab.leaving && reason?.startsWith('migrated');
        if (tab?.worker === w) tab = null;
        w.terminate();
        $('move-back').hidden = true;
        if (left) {
          status(`${m.name} runs in the daemon again`);
          $('console-name').textContent = m.name;
          void refresh();
        } else if (started) status(`${m.name} stopped in this tab: ${reason ?? 'stopped'}`);
        else {
          status(`${m.name} did not move: it runs on in the daemon`);
          reject(new Error(reason ?? 'the machine did not arrive'));
        }
      },
      error: (message) => {
        if (!started) reject(new Error(message));
        else report(new Error(message));
      },
      migration: (info) => {
        // A move back that failed leaves the machine running here: it may be tried again.
        if (tab?.worker === w && (info.status === 'failed' || info.status === 'cancelled')) tab.leaving = false;
        const verb = tab?.worker === w ? 'moving back to the daemon' : `moving ${m.name} into this tab`;
        status(`${verb}: ${info.status}${info.rounds ? `, round ${info.rounds}` : ''}${info.bytes ? `, ${mibs(info.bytes)} sent` : ''}${info.error ? `: ${info.error}` : ''}`);
      },
    }, '/ui/worker.js');
    w.ready.then(() => w.receive(wsUrl(`/vms/${m.id}/to-tab`), term.cols, term.rows), reject);
  });
}

/**
 * Moves the tab's machine back into the daemon, live. The terminal goes on as it is: the
 * daemon's console (only what comes from now on) is attached first, so the machine's first
 * words back in the daemon follow its last ones here.
 */
function moveBack(): void {
  if (!tab || tab.leaving) return;
  const t = tab;
  t.leaving = true;
  status(`moving ${t.name} back to the daemon`);
  socket?.close();
  const ws = new WebSocket(wsUrl(`/vms/${t.id}/console`, 'recent=false'));
  ws.binaryType = 'arraybuffer';
  ws.onmessage = (e) => term.write(new Uint8Array(e.data as ArrayBuffer));
  ws.onclose = () => term.write('\r\n[detached]\r\n');
  socket = ws;
  ws.onopen = () => t.worker.migrate(wsUrl(`/vms/${t.id}/from-tab`));
}

term.onData((d) => {
  const bytes = new TextEncoder().encode(d);
  if (tab) tab.worker.input(bytes);
  else if (socket?.readyState === WebSocket.OPEN) socket.send(bytes);
});
term.onResize(({ cols, rows }) => tab?.worker.resize(cols, rows));
$('move-back').onclick = moveBack;
$('detach').onclick = () => {
  socket?.close();
  socket = null;
  if (!tab) $('console').hidden = true;
};
window.virtusUi = {
  screenText: () => {
    const b = term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n');
  },
  tabMachine: () => tab?.name ?? null,
};
addEventListener('resize', () => fit.fit());

void api<{ version: string; stateDir: string; machines: number }>('GET', '/info').then((i) => ($('daemon').textContent = `${i.stateDir} (virtus ${i.version})`), report);
void refresh();
setInterval(() => void refresh(), 2000);
