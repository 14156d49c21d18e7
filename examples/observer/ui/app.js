// The edgewise web view: the listener's graph (/graph/view) drawn with
// Cytoscape.js, filtered in the page, kept current from /records when the
// listener is a daemon. Read-only; data is only ever put in the page as text.
'use strict';

const $ = (id) => document.getElementById(id);
const COLOURS = {
  violation: '#d32f2f', not_governed: '#8a8a8a', declared: '#2e7d32', unknown: '#37474f',
};
const SHAPES = {
  workload: 'round-rectangle', namespace: 'rectangle', node: 'hexagon',
  external: 'diamond', address: 'ellipse',
};
const state = {
  token: sessionStorage.getItem('edgewise-token') || '',
  view: null,
  selected: null,
  reload: null,
  lastId: null,
};

async function api(path, extra = {}) {
  const headers = { ...extra };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(path, { headers, cache: 'no-store' });
  if (response.status === 401) {
    $('token-form').hidden = false;
    $('token').focus();
    throw new Error('this listener needs a token');
  }
  return response;
}

const verdictOf = (v) => v || 'unknown';
const nanosToDate = (ns) => new Date(Number(ns) / 1e6).toISOString();

// The edges and groups that pass the filters.
function visible(view) {
  const namespace = $('namespace').value;
  const verdict = $('verdict').value;
  const protocol = $('protocol').value;
  const text = $('search').value.trim().toLowerCase();
  const groups = new Map(view.groups.map((g) => [g.id, g]));
  const edges = view.edges.filter((edge) => {
    const src = groups.get(edge.src);
    const dst = groups.get(edge.dst);
    if (namespace && src.namespace !== namespace && dst.namespace !== namespace) return false;
    const ports = edge.ports.filter((p) =>
      (!verdict || verdictOf(p.verdict) === verdict) && (!protocol || p.proto === protocol));
    if (ports.length === 0) return false;
    if (!text) return true;
    const haystack = [
      edge.src, edge.dst, ...edge.fqdns,
      ...edge.ports.map((p) => `${p.port}/${p.proto}`),
      ...edge.ports.flatMap((p) => p.policies),
      ...edge.server.services.map((s) => [s.name, s.product, s.version].join(' ')),
      ...edge.client.ja4t, ...edge.client.ja4, ...edge.server.ja4ts, ...edge.server.ja4s,
    ].join('\n').toLowerCase();
    return haystack.includes(text);
  });
  const shown = new Set(edges.flatMap((e) => [e.src, e.dst]));
  return { groups: view.groups.filter((g) => shown.has(g.id)), edges };
}

function elements(view) {
  const { groups, edges } = visible(view);
  const nodes = groups.map((g) => ({
    group: 'nodes',
    data: { id: g.id, label: g.id, shape: SHAPES[g.kind] || 'ellipse', kind: g.kind },
  }));
  const links = edges.map((e) => ({
    group: 'edges',
    data: {
      id: `${e.src}\u2192${e.dst}`, source: e.src, target: e.dst,
      label: e.ports.map((p) => `${p.port}/${p.proto}`).join(' '),
      colour: COLOURS[verdictOf(e.verdict)], verdict: verdictOf(e.verdict),
    },
  }));
  return { nodes, links, total: view.edges.length };
}

let cy = null;

function draw() {
  const view = state.view;
  if (!view) return;
  const { nodes, links, total } = elements(view);
  const before = cy.elements().map((e) => e.id()).sort().join('\n');
  const after = [...nodes, ...links].map((e) => e.data.id).sort().join('\n');
  cy.batch(() => {
    if (before !== after) {
      cy.elements().remove();
      cy.add([...nodes, ...links]);
    } else {
      for (const link of links) cy.getElementById(link.data.id).data(link.data);
    }
  });
  if (before !== after) layered();
  $('counts').textContent = `${nodes.length} groups, ${links.length} of ${total} edges`
    + ` (${view.edges_in_window} address edges in the window, ${view.edges_in_graph} in all)`;
  if (state.selected) showDetails(state.selected);
}

// A layered layout: each group one row below the lowest of its clients
// (longest path; a cycle stops after as many rounds as there are groups),
// each row ordered by where its clients sit, to keep crossings few.
function layered() {
  const level = new Map(cy.nodes().map((n) => [n.id(), 0]));
  for (let round = 0; round < level.size; round += 1) {
    let moved = false;
    cy.edges().forEach((e) => {
      const [src, dst] = [e.source().id(), e.target().id()];
      if (src !== dst && level.get(dst) < level.get(src) + 1) {
        level.set(dst, level.get(src) + 1);
        moved = true;
      }
    });
    if (!moved) break;
  }
  const rows = [];
  for (const [id, row] of level) (rows[row] ||= []).push(id);
  const x = new Map();
  const positions = {};
  rows.forEach((ids, row) => {
    const key = (id) => {
      const clients = cy.getElementById(id).incomers('node').map((n) => x.get(n.id()))
        .filter((v) => v !== undefined);
      return clients.length ? clients.reduce((a, b) => a + b, 0) / clients.length : -1;
    };
    ids.sort((a, b) => key(a) - key(b) || a.localeCompare(b));
    ids.forEach((id, i) => {
      x.set(id, (i + 1) / (ids.length + 1));
      positions[id] = { x: x.get(id) * 1000, y: row * 160 };
    });
  });
  // An edge that skips rows bends aside, clear of the groups between.
  cy.edges().forEach((e) => {
    const span = level.get(e.target().id()) - level.get(e.source().id());
    e.toggleClass('long', span > 1 || span < 0);
  });
  cy.layout({ name: 'preset', positions, fit: true, padding: 40 }).run();
}

function fillNamespaces(view) {
  const select = $('namespace');
  const chosen = select.value;
  const names = [...new Set(view.groups.map((g) => g.namespace).filter(Boolean))].sort();
  select.replaceChildren(new Option('all', ''), ...names.map((n) => new Option(n, n)));
  select.value = names.includes(chosen) ? chosen : '';
}

async function load() {
  const query = new URLSearchParams({ granularity: $('granularity').value });
  if ($('window').value) query.set('window_s', $('window').value);
  const response = await api(`/graph/view?${query}`);
  if (!response.ok) throw new Error(`/graph/view: ${response.status} ${await response.text()}`);
  state.view = await response.json();
  fillNamespaces(state.view);
  draw();
}

function reloadSoon() {
  if (state.reload) return;
  state.reload = setTimeout(() => {
    state.reload = null;
    load().catch(showError);
  }, 1000);
}

// The details panel, built from text nodes only.
function entry(list, term, values) {
  const items = (Array.isArray(values) ? values : [values]).filter((v) => v !== null && v !== '');
  if (items.length === 0) return;
  const dt = document.createElement('dt');
  dt.textContent = term;
  const dd = document.createElement('dd');
  if (items.length === 1) {
    dd.textContent = String(items[0]);
  } else {
    const ul = document.createElement('ul');
    for (const item of items) {
      const li = document.createElement('li');
      li.textContent = String(item);
      ul.append(li);
    }
    dd.append(ul);
  }
  list.append(dt, dd);
}

function showDetails(selected) {
  const panel = $('details');
  const view = state.view;
  const title = document.createElement('h2');
  const list = document.createElement('dl');
  if (selected.kind === 'edge') {
    const edge = view.edges.find((e) => `${e.src}\u2192${e.dst}` === selected.id);
    if (!edge) return;
    title.textContent = `${edge.src} \u2192 ${edge.dst}`;
    entry(list, 'verdict', verdictOf(edge.verdict));
    list.lastChild.className = `verdict-${verdictOf(edge.verdict)}`;
    entry(list, 'ports', edge.ports.map((p) => `${p.port}/${p.proto}: ${verdictOf(p.verdict)}, `
      + `${p.flows} flow${p.flows === 1 ? "" : "s"}${p.policies.length ? `, policy ${p.policies.join(', ')}` : ''}`));
    entry(list, 'FQDN', edge.fqdns);
    entry(list, 'services', edge.server.services.map((s) =>
      [`${s.port}/${s.proto} ${s.name}`, s.product, s.version, s.source === 'active' ? '(probed)' : '']
        .filter(Boolean).join(' ')));
    entry(list, 'client JA4T', edge.client.ja4t);
    entry(list, 'client JA4', edge.client.ja4);
    entry(list, 'server JA4TS', edge.server.ja4ts);
    entry(list, 'server JA4S', edge.server.ja4s);
    entry(list, 'flows', edge.flows);
    entry(list, 'bytes', edge.bytes);
    entry(list, 'first seen', nanosToDate(edge.first_seen_ns));
    entry(list, 'last seen', nanosToDate(edge.last_seen_ns));
  } else {
    const group = view.groups.find((g) => g.id === selected.id);
    if (!group) return;
    title.textContent = group.id;
    entry(list, 'kind', group.kind);
    entry(list, 'namespace', group.namespace || '');
    entry(list, 'addresses', group.addresses);
    entry(list, 'clients of', view.edges.filter((e) => e.src === group.id).map((e) => e.dst));
    entry(list, 'servers of', view.edges.filter((e) => e.dst === group.id).map((e) => e.src));
  }
  panel.replaceChildren(title, list);
}

function showError(error) {
  const badge = $('source');
  badge.textContent = String(error.message || error);
  badge.className = 'badge down';
}

// A compact line per record, the newest first.
function recordLine(record) {
  const edge = record.edge || {};
  switch (record.type) {
    case 'edge': return `edge ${record.summary} ${record.proto} ${record.verdict}`;
    case 'rule': return `rule ${record.rule} ${record.action} ${record.matched ? 'matched' : 'stopped'}: ${record.summary}`;
    case 'drop': return `drop ${edge.src} -> ${edge.dst}:${edge.port}/${edge.proto} ${record.packets} packets`;
    default: return `${record.type}`;
  }
}

function showRecord(record) {
  const li = document.createElement('li');
  li.textContent = `${nanosToDate(record.time_ns || 0)} ${recordLine(record)}`;
  if (record.verdict === 'violation') li.className = 'violation';
  const list = $('recent');
  list.prepend(li);
  while (list.children.length > 50) list.lastChild.remove();
}

// Follows /records (server-sent events, read with fetch so that the token
// can go in a header), coming back after the last record seen.
async function follow() {
  const resume = state.lastId ? { 'Last-Event-ID': state.lastId } : {};
  const response = await api('/records?type=edge&type=rule&type=drop&last=20&follow=true', resume);
  if (!response.ok) throw new Error(`/records: ${response.status}`);
  $('source').textContent = 'live';
  $('source').className = 'badge live';
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const lines = event.split('\n');
      const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      const id = lines.find((l) => l.startsWith('id: '));
      if (id) state.lastId = id.slice(4);
      if (!lines.includes('event: record') || !data) continue;
      showRecord(JSON.parse(data));
      reloadSoon();
    }
  }
}

// A daemon's listener has records to follow; one of graph files has none.
async function keepFollowing() {
  const listener = await (await fetch('/ui/listener.json', { cache: 'no-store' })).json();
  if (!listener.records) {
    $('source').textContent = 'graph files';
    return;
  }
  for (;;) {
    try {
      await follow();
    } catch (error) {
      showError(error);
      // The token form is up; submitting it follows again.
      if (!$('token-form').hidden) return;
    }
    $('source').textContent = 'reconnecting';
    $('source').className = 'badge down';
    await new Promise((resolve) => { setTimeout(resolve, 2000); });
  }
}

function start() {
  cy = cytoscape({
    container: $('graph'),
    wheelSensitivity: 0.3,
    style: [
      { selector: 'node', style: {
        label: 'data(label)', shape: 'data(shape)', 'background-color': '#90a4ae',
        'font-size': 11, 'text-valign': 'bottom', 'text-margin-y': 4, width: 28, height: 28,
      } },
      { selector: 'node[kind = "external"]', style: { 'background-color': '#ef9a3a' } },
      { selector: 'node[kind = "workload"], node[kind = "namespace"]', style: { 'background-color': '#4a78b5' } },
      { selector: 'edge', style: {
        width: 2, 'line-color': 'data(colour)', 'target-arrow-color': 'data(colour)',
        'target-arrow-shape': 'triangle', 'curve-style': 'bezier', label: 'data(label)',
        'font-size': 9, 'text-background-color': '#fff', 'text-background-opacity': 0.8,
      } },
      { selector: 'edge[verdict = "violation"]', style: { width: 4 } },
      { selector: 'edge.long', style: {
        'curve-style': 'unbundled-bezier', 'control-point-distances': 60, 'control-point-weights': 0.5,
      } },
      { selector: ':selected', style: { 'overlay-opacity': 0.15, 'overlay-color': '#000' } },
    ],
  });
  cy.on('tap', 'edge', (e) => {
    state.selected = { kind: 'edge', id: e.target.id() };
    showDetails(state.selected);
  });
  cy.on('tap', 'node', (e) => {
    state.selected = { kind: 'group', id: e.target.id() };
    showDetails(state.selected);
  });
  for (const id of ['granularity', 'window']) {
    $(id).addEventListener('change', () => { state.selected = null; load().catch(showError); });
  }
  for (const id of ['namespace', 'verdict', 'protocol']) $(id).addEventListener('change', draw);
  $('search').addEventListener('input', draw);
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    state.token = $('token').value.trim();
    sessionStorage.setItem('edgewise-token', state.token);
    $('token-form').hidden = true;
    load().then(keepFollowing).catch(showError);
  });
  load().then(keepFollowing).catch(showError);
  // A daemon publishes its graph every stats interval, edgewise ui when its
  // files change, the collector every 10 s: the page looks again every 5 s
  // (and, when live, after each record).
  setInterval(() => load().catch(showError), 5000);
}

document.addEventListener('DOMContentLoaded', start);
