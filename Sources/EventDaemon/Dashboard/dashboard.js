// Sutra Grid Events dashboard: plain JavaScript, no dependencies, no network beyond this daemon's own API.
// Every piece of event content goes into the page as text (textContent, SVG text nodes), never as HTML.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  // What the page measures about itself (the browser test reads it; harmless for a person).
  const dash = window.__dash = {polls: {}, firstRender: null, renders: 0, tilesUpdated: 0, tilesMoved: 0, lastRenderMs: 0,
    streamReceived: 0, errors: []};

  const SEVERITY = {spawn_failed: 'error', stop_failed: 'error', node_crashed: 'error', cluster_critical: 'error', agent_offline: 'error',
    agent_degraded: 'warning', cluster_degraded: 'warning', events_dropped: 'warning', node_restarted: 'warning'};
  const ALERT_TYPES = ['node_crashed', 'spawn_failed', 'stop_failed', 'agent_offline', 'cluster_degraded', 'cluster_critical'];
  const FAILURE_TYPES = ['spawn_failed', 'stop_failed'];
  const AGENT_TYPES = ['agent_registered', 'agent_heartbeat', 'agent_degraded', 'agent_offline', 'agent_recovered', 'agent_unregistered'];
  const TRANSITION_TYPES = ['agent_registered', 'agent_degraded', 'agent_offline', 'agent_recovered', 'agent_unregistered'];
  const NODE_TYPES = ['spawn_requested', 'spawn_succeeded', 'spawn_failed', 'stop_requested', 'stop_succeeded', 'stop_failed', 'node_crashed', 'node_restarted'];
  const TYPES = AGENT_TYPES.concat(NODE_TYPES, ['cluster_healthy', 'cluster_degraded', 'cluster_critical', 'storage_metrics', 'events_dropped']);
  const EXAMPLES = ['show spawn failures today', 'spawn events today', 'count spawn failures this week', 'what happened to agent-001',
    'agent-001 timeline', "what's the crash history of node-7", 'how many nodes crashed this week',
    'which agents went offline in the last hour', 'show the events leading to node-7 crash', 'top 5 agents by failures this week',
    'show stop failures since 14:00', 'count heartbeats in the last 10 minutes', 'show alerts today'];
  const COLORS = ['#58a6ff', '#3fb950', '#d29922', '#f85149', '#bc8cff', '#39c5cf', '#ff7b72', '#e3b341', '#8b949e', '#56d364', '#a5d6ff',
    '#ffa657', '#d2a8ff', '#79c0ff', '#7ee787', '#f0883e', '#db61a2', '#c9d1d9', '#6e7681'];
  // State words come with an icon, so colour is never the only signal.
  const AGENT_STATES = ['healthy', 'degraded', 'offline', 'unregistered'];
  const NODE_STATES = ['running', 'restarted', 'crashed', 'failed', 'stopped', 'starting', 'stopping'];
  const ICON = {healthy: '✓', degraded: '!', offline: '✕', unregistered: '–', running: '●', restarted: '↻', crashed: '✕', failed: '✕',
    stopped: '■', starting: '…', stopping: '…'};
  const STATE_COLOR = {healthy: '#3fb950', degraded: '#d29922', offline: '#f85149', unregistered: '#8b949e', running: '#3fb950',
    restarted: '#39c5cf', crashed: '#f85149', failed: '#db61a2', stopped: '#6e7681', starting: '#d29922', stopping: '#d29922'};
  const PROBLEM_NODE = {crashed: true, failed: true};
  const MAX_ROWS = 200;       // live-stream rows kept in the page
  const MAX_ALERTS = 100;
  const REFRESH_MS = Math.min(300, Math.max(0.5, Number(params.get('refresh')) || 5)) * 1000;

  const colorOf = (t) => COLORS[(TYPES.indexOf(t) + COLORS.length) % COLORS.length];
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  };
  const svgEl = (tag, attrs, text) => {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = String(text);
    return e;
  };
  const button = (text, onClick, cls) => {
    const b = el('button', text, cls);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  };
  const short = (t) => t ? String(t).replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
  const iso = (ms) => new Date(ms).toISOString();
  const fmt = (n) => Number(n).toLocaleString('en-US');
  const bytes = (n) => n >= 1e9 ? (n / 1e9).toFixed(2) + ' GB' : n >= 1e6 ? (n / 1e6).toFixed(1) + ' MB' : n >= 1e3 ? (n / 1e3).toFixed(1) + ' kB' : n + ' B';
  const ago = (ms) => {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return s < 90 ? s + ' s ago' : s < 5400 ? Math.round(s / 60) + ' min ago' : s < 172800 ? Math.round(s / 3600) + ' h ago' : Math.round(s / 86400) + ' d ago';
  };
  const details = (e) => Object.entries(e.fields || {}).filter(([k]) => k !== 'agent_id' && k !== 'node_id')
    .map(([k, v]) => k + '=' + (v === null ? '-' : v)).join(' ');
  const stateBadge = (s) => el('span', (ICON[s] || '') + ' ' + s, 'st ' + s);
  // One collator for every id sort: localeCompare with options builds a new one per call (about 100 times slower,
  // which made sorting 10,000 node ids most of the first render).
  const compareIds = new Intl.Collator('en', {numeric: true}).compare;
  const shortId = (id) => { const m = /(\d+)$/.exec(id); return m && m[1].length <= 5 ? m[1] : id.slice(-4); };

  // Signed in with a session cookie (grid-eventd --token): a 401 means the session expired or was signed out
  // elsewhere; the page reloads once, and the server answers it with the sign-in form.
  let reloading = false;
  function signedOut() {
    if (reloading) return;
    reloading = true;
    location.reload();
  }
  async function api(path, options) {
    const r = await fetch(path, options);
    if (r.status === 401) signedOut();
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      const err = new Error((body.error && body.error.message) || ('HTTP ' + r.status));
      err.body = body;
      err.status = r.status;
      throw err;
    }
    return body;
  }

  // A poll that never starts while its last run is in flight: the next run is scheduled when one finishes, and a
  // request for a run meanwhile ("now") is remembered and made once after it.
  function poller(name, fn, interval) {
    const st = dash.polls[name] = {started: 0, finished: 0, inFlight: 0, maxInFlight: 0, failures: 0};
    let timer = null, running = false, again = false;
    async function tick() {
      if (running) { again = true; return; }
      running = true;
      clearTimeout(timer);
      timer = null;
      st.started++; st.inFlight++;
      st.maxInFlight = Math.max(st.maxInFlight, st.inFlight);
      try { await fn(); } catch (e) { st.failures++; } finally {
        st.inFlight--; st.finished++;
        running = false;
        if (again) { again = false; setTimeout(tick, 0); } else {
          const next = interval();
          if (next) timer = setTimeout(tick, next);
        }
      }
    }
    let soonTimer = null;
    return {
      now: tick,
      // At most one extra run per `ms`, for bursts of live events.
      soon(ms) { if (!soonTimer) soonTimer = setTimeout(() => { soonTimer = null; tick(); }, ms || 500); },
    };
  }

  // ---------------------------------------------------------------------------------------------------------
  // The view: live, or the grid as of a moment (time travel).
  const view = {at: null, token: 0, agents: [], byId: new Map(), hostOf: new Map(), stats: null, hourly: null,
    selected: null};
  const filters = {agentState: '', nodeState: '', search: '', host: '', eventTypes: null};

  // ---------------------------------------------------------------------------------------------------------
  // Store health and hosts, from /api/stats.
  async function refreshStats() {
    const s = await api('/api/stats');
    view.stats = s;
    $('h-events').textContent = fmt(s.events);
    $('h-bytes').textContent = bytes(s.disk_bytes);
    const c = s.compaction || {};
    const raw = (s.data_bytes || 0) - (c.uncompacted_data_bytes || 0);
    // The ratio in the header; how many sealed segments it covers in the tooltip (the header stays one line).
    $('h-ratio').textContent = c.compacted_segments > 0 && c.compacted_bytes > 0 ? (raw / c.compacted_bytes).toFixed(1) + 'x' : 'none yet';
    $('h-ratio').parentElement.title = 'raw bytes of compacted segments / their compacted size: ' + (c.compacted_segments || 0) + ' of '
      + s.sealed_segments + ' sealed segments compacted, ' + bytes(c.compacted_bytes || 0) + ' on disk';
    $('h-segments').textContent = s.segments;
    if (!view.at) setTile('rate', Math.round(s.ingest.rate_per_second), fmt(Math.round(s.ingest.rate_per_second)) + '/s');
    updateSliderRange();
    renderHosts();
  }

  function renderHosts() {
    const agg = view.stats && view.stats.aggregation;
    $('hosts-panel').hidden = !agg;
    if (!agg) return;
    const counts = new Map();
    for (const h of view.hostOf.values()) counts.set(h, (counts.get(h) || 0) + 1);
    const rows = Object.entries(agg.hosts || {}).map(([id, h]) => ({id, h, heard: h.last_heard ? h.last_heard / 1000 : null}));
    rows.sort((a, b) => (b.h.lag_seconds || 0) - (a.h.lag_seconds || 0) || a.id.localeCompare(b.id));
    const body = $('hosts');
    body.replaceChildren(...rows.map(({id, h, heard}) => {
      const stale = !heard || Date.now() - heard > 60000;
      const lagging = (h.lag_frames || 0) > 0 || (h.lag_seconds || 0) > 5;
      const status = stale ? 'stale' : lagging ? 'lagging' : 'in step';
      const tr = el('tr', null, 'host');
      tr.dataset.host = id;
      const st = el('span', (stale ? '✕ ' : lagging ? '! ' : '✓ ') + status, 'st ' + (stale ? 'offline' : lagging ? 'degraded' : 'healthy'));
      const tdStatus = el('td'); tdStatus.append(st);
      const name = el('td'); name.append(button('host-' + id, () => { setFilter({host: id}); }));
      tr.append(name, tdStatus, el('td', (h.lag_seconds || 0).toFixed(1) + ' s', 'num'),
        el('td', fmt(h.lag_frames || 0) + ' / ' + fmt(h.lag_events || 0), 'num'),
        el('td', heard ? ago(heard) + ' (' + short(iso(heard)) + ')' : 'never'),
        el('td', counts.get(id) || 0, 'num'), el('td', fmt(h.events || 0), 'num'));
      return tr;
    }));
  }

  // Which host each agent is on, on an aggregator: the host-<id> entity of the agent's newest registration.
  async function refreshHosts() {
    if (!(view.stats && view.stats.aggregation)) return;
    const token = view.token;
    const map = new Map();
    let cursor = null;
    for (let page = 0; page < 20; page++) {
      let q = '/api/events?type=agent_registered&limit=1000';
      if (view.at) q += '&until=' + encodeURIComponent(iso(view.at));
      if (cursor) q += '&cursor=' + encodeURIComponent(cursor);
      const r = await api(q);
      for (const e of r.events) {
        const agent = e.fields && e.fields.agent_id;
        const host = (e.entities || []).find((x) => x.startsWith('host-'));
        if (agent && host && !map.has(agent)) map.set(agent, host.slice(5));
      }
      cursor = r.next_cursor;
      if (!cursor) break;
    }
    if (token !== view.token) return;
    const changed = map.size !== view.hostOf.size || [...map].some(([a, h]) => view.hostOf.get(a) !== h);
    view.hostOf = map;
    const hosts = [...new Set(map.values())].sort();
    const sel = $('f-host');
    sel.hidden = hosts.length === 0;
    const keep = sel.value;
    sel.replaceChildren(el('option', 'all hosts'), ...hosts.map((h) => el('option', 'host-' + h)));
    sel.options[0].value = '';
    hosts.forEach((h, i) => { sel.options[i + 1].value = h; });
    sel.value = hosts.includes(keep) ? keep : '';
    if (changed) { for (const a of view.agents) a.sig = ''; renderAgents(); drawTopology(); renderHosts(); }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Agents: the state answer, summarised per agent.
  function summarise(a) {
    const counts = {};
    let problems = 0;
    for (const n of a.nodes) {
      counts[n.state] = (counts[n.state] || 0) + 1;
      if (PROBLEM_NODE[n.state]) problems++;
    }
    a.counts = counts;
    a.problems = problems;
    // Problems first: offline, degraded, agents with crashed or failed nodes, then healthy, then unregistered.
    a.rank = a.state === 'offline' ? 0 : a.state === 'degraded' ? 1 : problems > 0 && a.state !== 'unregistered' ? 2 : a.state === 'healthy' ? 3 : 4;
    a.nodes.sort((x, y) => (PROBLEM_NODE[y.state] ? 1 : 0) - (PROBLEM_NODE[x.state] ? 1 : 0) || compareIds(x.node_id, y.node_id));
    // What the agent's tile and the topology show; not the last heartbeat, which changes on every poll of a live grid
    // (the tooltip and the detail read it when they open).
    a.key = a.state + '|' + a.nodes.map((n) => n.node_id + ':' + n.state + ':' + n.restart_count).join(',') + '|' + a.last_transition_at;
  }

  async function refreshAgents() {
    const token = view.token;
    const t0 = performance.now();
    let data;
    try {
      data = await api('/api/grid/agents' + (view.at ? '?at=' + encodeURIComponent(iso(view.at)) : ''));
    } catch (e) {
      if (token === view.token && view.at) setBanner('Time travel failed: ' + e.message, true);
      throw e;
    }
    if (token !== view.token) return;
    const t1 = performance.now();
    const old = view.byId;
    view.byId = new Map();
    view.agents = data.agents;
    // Whether anything changed since the last answer: if not, nothing is redrawn.
    let changed = data.agents.length !== old.size || !dash.firstRender || view.shownAt !== view.at;
    view.shownAt = view.at;
    for (const a of data.agents) {
      summarise(a);
      const prev = old.get(a.agent_id);
      a.el = prev ? prev.el : null;
      a.sig = prev ? prev.sig : '';
      if (!prev || prev.key !== a.key) changed = true;
      view.byId.set(a.agent_id, a);
    }
    for (const [id, prev] of old) if (!view.byId.has(id) && prev.el) prev.el.remove();
    const ts = performance.now();
    if (changed) { renderTiles(); renderAgents(); }
    const ta = performance.now();
    // The first time, the topology (below the first screen) is drawn after the tiles and the map are painted.
    const first = !dash.firstRender;
    if (changed && !first) drawTopology();
    if (changed && view.selected && view.byId.has(view.selected) && !$('agent-detail').hidden) renderAgentNodes(view.byId.get(view.selected));
    const t2 = performance.now();
    if (first) {
      // Wait for the frame to be painted before calling it rendered.
      await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
      const t3 = performance.now();
      const fr = {fetchMs: Math.round(t1 - t0), buildMs: Math.round(t2 - t1), paintedMs: Math.round(t3 - t1),
        summariseMs: Math.round(ts - t1), agentsMs: Math.round(ta - ts),
        sinceNavigationMs: Math.round(t3), agents: data.agents.length, nodes: data.agents.reduce((n, a) => n + a.nodes.length, 0)};
      // In the same task as firstRender, so whoever sees firstRender sees the topology drawn.
      if (token === view.token) drawTopology();
      fr.topologyMs = Math.round(performance.now() - t3);
      dash.firstRender = fr;
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Summary tiles. Each one is a filter (press again to clear).
  const TILES = [
    {group: 'agents', id: 'agent-healthy', label: 'healthy', state: 'healthy', filter: {agentState: 'healthy'}},
    {group: 'agents', id: 'agent-degraded', label: 'degraded', state: 'degraded', filter: {agentState: 'degraded'}, alarm: true},
    {group: 'agents', id: 'agent-offline', label: 'offline', state: 'offline', filter: {agentState: 'offline'}, alarm: true},
    {group: 'agents', id: 'agent-unregistered', label: 'unregistered', state: 'unregistered', filter: {agentState: 'unregistered'}},
    {group: 'nodes', id: 'node-running', label: 'running', state: 'running', filter: {nodeState: 'running'}},
    {group: 'nodes', id: 'node-restarted', label: 'restarted', state: 'restarted', filter: {nodeState: 'restarted'}},
    {group: 'nodes', id: 'node-crashed', label: 'crashed', state: 'crashed', filter: {nodeState: 'crashed'}, alarm: true},
    {group: 'nodes', id: 'node-failed', label: 'failed', state: 'failed', filter: {nodeState: 'failed'}, alarm: true},
    {group: 'nodes', id: 'node-stopped', label: 'stopped', state: 'stopped', filter: {nodeState: 'stopped'}},
    {group: 'last hour', id: 'crashes', label: 'crashes, 1 h', state: 'crashes', filter: {eventTypes: ['node_crashed'], nodeState: 'crashed'}, alarm: true},
    {group: 'last hour', id: 'failures', label: 'failures, 1 h', state: 'failures', filter: {eventTypes: FAILURE_TYPES, nodeState: 'failed'}, alarm: true},
    {group: 'last hour', id: 'rate', label: 'ingest', state: 'rate', filter: {}},
  ];
  function buildTiles() {
    const box = $('tiles');
    const groups = new Map();
    for (const t of TILES) {
      if (!groups.has(t.group)) {
        const g = el('div', null, 'tile-group');
        g.append(el('span', t.group));
        groups.set(t.group, g);
        box.append(g);
      }
      const b = el('button', null, 'tile s-' + t.state + (t.alarm ? ' alarm' : ''));
      b.type = 'button';
      b.id = 't-' + t.id;
      b.dataset.tile = t.id;
      b.setAttribute('aria-pressed', 'false');
      const icon = ICON[t.state] ? ICON[t.state] + ' ' : '';
      b.append(el('b', '-'), el('span', (t.group === 'last hour' ? '' : icon) + t.label, 'lbl'));
      b.addEventListener('click', () => {
        const on = b.getAttribute('aria-pressed') === 'true';
        if (on || t.id === 'rate') clearFilters(); else setFilter(Object.assign({agentState: '', nodeState: '', eventTypes: null}, t.filter), t.id);
      });
      groups.get(t.group).append(b);
    }
  }
  function setTile(id, value, text) {
    const b = $('t-' + id);
    if (!b) return;
    b.dataset.count = value === null ? '' : String(value);
    b.firstChild.textContent = text !== undefined ? text : value === null ? '-' : fmt(value);
    b.classList.toggle('zero', value === 0);
    b.setAttribute('aria-label', (text !== undefined ? text : value) + ' ' + b.lastChild.textContent);
  }
  function renderTiles() {
    const agents = {}, nodes = {};
    for (const a of view.agents) {
      agents[a.state] = (agents[a.state] || 0) + 1;
      for (const s in a.counts) nodes[s] = (nodes[s] || 0) + a.counts[s];
    }
    for (const s of AGENT_STATES) setTile('agent-' + s, agents[s] || 0);
    for (const s of ['running', 'restarted', 'crashed', 'failed', 'stopped']) setTile('node-' + s, nodes[s] || 0);
    const total = view.agents.reduce((n, a) => n + a.nodes.length, 0);
    $('agents-count').textContent = fmt(view.agents.length) + ' agents, ' + fmt(total) + ' nodes' + (view.at ? ' as of ' + short(iso(view.at)) : '');
  }

  // Crashes and failures in the hour up to now (the timeline route: exact counts) or up to the moment travelled to
  // (counted through the events route, page by page).
  async function countEvents(types, since, until) {
    let n = 0, cursor = null;
    for (let page = 0; page < 50; page++) {
      let q = '/api/events?type=' + types.join(',') + '&since=' + encodeURIComponent(iso(since)) + '&until=' + encodeURIComponent(iso(until)) + '&limit=1000';
      if (cursor) q += '&cursor=' + encodeURIComponent(cursor);
      const r = await api(q);
      n += r.events.length;
      cursor = r.next_cursor;
      if (!cursor) return {n, more: false};
    }
    return {n, more: true};
  }
  async function refreshHourly() {
    const token = view.token;
    if (!view.at) {
      const d = await api('/api/timeline?minutes=60&buckets=1');
      if (token !== view.token) return;
      const c = (t) => (d.series[t] || [0]).reduce((x, y) => x + y, 0);
      setTile('crashes', c('node_crashed'));
      setTile('failures', c('spawn_failed') + c('stop_failed'));
      return;
    }
    const at = view.at;
    const [crashes, failures, metrics] = await Promise.all([
      countEvents(['node_crashed'], at - 3600000, at), countEvents(FAILURE_TYPES, at - 3600000, at),
      api('/api/events?type=storage_metrics&limit=1&until=' + encodeURIComponent(iso(at)))]);
    if (token !== view.token) return;
    setTile('crashes', crashes.n, fmt(crashes.n) + (crashes.more ? '+' : ''));
    setTile('failures', failures.n, fmt(failures.n) + (failures.more ? '+' : ''));
    const m = metrics.events[0];
    const rate = m && m.fields ? Math.round(Number(m.fields.ingest_rate) || 0) : null;
    setTile('rate', rate, rate === null ? 'n/a' : fmt(rate) + '/s');
  }

  // ---------------------------------------------------------------------------------------------------------
  // The agent heat map: one button per agent (state colour, icon and number), its nodes as cells inside. Updated
  // in place: only agents whose state or nodes changed are redrawn, and elements move only when the order changes.
  function agentVisible(a) {
    if (filters.agentState && a.state !== filters.agentState) return false;
    if (filters.nodeState === 'problem' ? a.problems === 0 : filters.nodeState && !a.counts[filters.nodeState]) return false;
    if (filters.host && view.hostOf.get(a.agent_id) !== filters.host) return false;
    const q = filters.search;
    if (q && !a.agent_id.toLowerCase().includes(q) && !(a.hostname || '').toLowerCase().includes(q)
      && !a.nodes.some((n) => n.node_id.toLowerCase() === q || (q.length > 4 && n.node_id.toLowerCase().startsWith(q)))) return false;
    return true;
  }
  function agentLabel(a) {
    const parts = [a.agent_id, a.state];
    const host = view.hostOf.get(a.agent_id);
    if (host) parts.push('host-' + host);
    parts.push(a.nodes.length + ' nodes');
    for (const s of NODE_STATES) if (a.counts[s] && s !== 'running') parts.push(a.counts[s] + ' ' + s);
    return parts.join(', ');
  }
  function drawAgent(a) {
    const b = a.el || el('button', null, 'agent');
    if (!a.el) {
      b.type = 'button';
      b.tabIndex = -1;
      b.dataset.agent = a.agent_id;
      a.el = b;
    }
    b.className = 'agent s-' + a.state + (view.selected === a.agent_id ? ' sel' : '');
    b.dataset.state = a.state;
    b.dataset.problems = String(a.problems);
    b.setAttribute('aria-label', agentLabel(a));
    const head = el('span', (ICON[a.state] || '?') + shortId(a.agent_id), 'ah');
    const cells = el('span', null, 'nc');
    for (const n of a.nodes) {
      const i = document.createElement('i');
      i.className = 'n-' + n.state;
      cells.append(i);
    }
    b.replaceChildren(head, cells);
    dash.tilesUpdated++;
  }
  function renderAgents() {
    const t0 = performance.now();
    const map = $('agent-map');
    const order = view.agents.slice().sort((x, y) => x.rank - y.rank || y.problems - x.problems || compareIds(x.agent_id, y.agent_id));
    let visible = 0;
    let cursor = map.firstElementChild;
    for (const a of order) {
      const sig = a.key + '|' + (view.selected === a.agent_id) + '|' + (view.hostOf.get(a.agent_id) || '');
      if (a.sig !== sig || !a.el) { drawAgent(a); a.sig = sig; }
      const show = agentVisible(a);
      if (a.el.hidden === show) a.el.hidden = !show;
      if (show) visible++;
      if (a.el !== cursor) { map.insertBefore(a.el, cursor); dash.tilesMoved++; } else cursor = cursor.nextElementSibling;
    }
    view.order = order;
    const empty = $('agents-empty');
    empty.hidden = visible > 0;
    empty.textContent = view.agents.length ? 'No agent matches the filters.' : 'No agents have registered yet.';
    if (!map.querySelector('.agent[tabindex="0"]:not([hidden])')) {
      const first = map.querySelector('.agent:not([hidden])');
      for (const x of map.querySelectorAll('.agent[tabindex="0"]')) x.tabIndex = -1;
      if (first) first.tabIndex = 0;
    }
    dash.renders++;
    dash.lastRenderMs = Math.round(performance.now() - t0);
    dash.visibleAgents = visible;
  }
  function buildLegend() {
    const box = $('map-legend');
    for (const s of ['running', 'restarted', 'crashed', 'failed', 'stopped', 'starting']) {
      const span = el('span', s);
      const i = el('i');
      i.style.background = STATE_COLOR[s];
      span.prepend(i);
      box.append(span);
    }
  }

  // Keyboard: arrows move between agents (a roving tab stop), Home/End, Enter opens; "/" focuses the search.
  function visibleTiles() { return [...$('agent-map').querySelectorAll('.agent:not([hidden])')]; }
  function focusTile(t) {
    if (!t) return;
    for (const x of $('agent-map').querySelectorAll('.agent[tabindex="0"]')) x.tabIndex = -1;
    t.tabIndex = 0;
    t.focus();
  }
  $('agent-map').addEventListener('keydown', (ev) => {
    const tiles = visibleTiles();
    const i = tiles.indexOf(document.activeElement);
    if (i < 0) return;
    let perRow = 1;
    while (perRow < tiles.length && tiles[perRow].offsetTop === tiles[0].offsetTop) perRow++;
    const to = {ArrowRight: i + 1, ArrowLeft: i - 1, ArrowDown: i + perRow, ArrowUp: i - perRow, Home: 0, End: tiles.length - 1}[ev.key];
    if (to === undefined) return;
    ev.preventDefault();
    focusTile(tiles[Math.max(0, Math.min(tiles.length - 1, to))]);
  });
  $('agent-map').addEventListener('click', (ev) => {
    const t = ev.target.closest('.agent');
    if (t) { focusTile(t); openAgent(t.dataset.agent); }
  });
  // Hover or focus: the agent's summary.
  function showTip(t) {
    const a = view.byId.get(t.dataset.agent);
    if (!a) return;
    const tip = $('tip');
    const lines = [el('b', a.agent_id), el('div'), el('div')];
    lines[1].append(stateBadge(a.state), document.createTextNode(' since ' + short(a.last_transition_at) + ' (' + a.last_transition + ')'));
    const host = view.hostOf.get(a.agent_id);
    lines[2].textContent = (host ? 'host-' + host + ' · ' : '') + (a.hostname ? a.hostname + ' · ' : '') + 'last heartbeat ' + short(a.last_heartbeat);
    const nodes = el('div', a.nodes.length + ' nodes: ' + NODE_STATES.filter((s) => a.counts[s]).map((s) => a.counts[s] + ' ' + s).join(', '));
    const bad = a.nodes.filter((n) => PROBLEM_NODE[n.state]).slice(0, 5);
    tip.replaceChildren(...lines, nodes, ...bad.map((n) => el('div', ICON[n.state] + ' ' + n.node_id + ' ' + n.state + (n.detail ? ': ' + n.detail : ''))));
    tip.hidden = false;
    const r = t.getBoundingClientRect();
    const w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.max(4, Math.min(window.innerWidth - w - 4, r.left)) + 'px';
    tip.style.top = (r.bottom + h + 6 < window.innerHeight ? r.bottom + 4 : Math.max(4, r.top - h - 4)) + 'px';
  }
  const hideTip = () => { $('tip').hidden = true; };
  $('agent-map').addEventListener('mouseover', (ev) => { const t = ev.target.closest('.agent'); if (t) showTip(t); });
  $('agent-map').addEventListener('mouseleave', hideTip);
  $('agent-map').addEventListener('focusin', (ev) => { const t = ev.target.closest('.agent'); if (t) showTip(t); });
  $('agent-map').addEventListener('focusout', hideTip);

  // Filters.
  function syncFilterControls() {
    $('f-agent-state').value = filters.agentState;
    $('f-node-state').value = filters.nodeState;
    $('f-host').value = filters.host;
    $('search').value = filters.search;
    $('f-type').value = filters.eventTypes && filters.eventTypes.length === 1 ? filters.eventTypes[0] : '';
  }
  function setFilter(f, tileId) {
    Object.assign(filters, f);
    for (const b of document.querySelectorAll('.tile')) b.setAttribute('aria-pressed', String(b.dataset.tile === tileId));
    syncFilterControls();
    renderAgents();
    drawTopology();
    if ('eventTypes' in f) loadEvents();
  }
  function clearFilters() {
    setFilter({agentState: '', nodeState: '', search: '', host: '', eventTypes: null}, null);
    $('f-entity').value = '';
  }
  $('search').addEventListener('input', () => { filters.search = $('search').value.trim().toLowerCase(); renderAgents(); });
  $('search').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      // Without this the key's activation would land on the detail's Close button, which takes the focus.
      ev.preventDefault();
      const first = visibleTiles()[0];
      if (first) { focusTile(first); openAgent(first.dataset.agent); }
    } else if (ev.key === 'ArrowDown') { ev.preventDefault(); focusTile(visibleTiles()[0]); }
  });
  $('f-agent-state').addEventListener('change', () => setFilter({agentState: $('f-agent-state').value}));
  $('f-node-state').addEventListener('change', () => setFilter({nodeState: $('f-node-state').value}));
  $('f-host').addEventListener('change', () => setFilter({host: $('f-host').value}));
  $('clear-filters').addEventListener('click', clearFilters);
  document.addEventListener('keydown', (ev) => {
    const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement && document.activeElement.tagName);
    if (ev.key === '/' && !typing) { ev.preventDefault(); $('search').focus(); }
    if (ev.key === 'Escape' && !$('detail').hidden) closeDetail();
  });

  // ---------------------------------------------------------------------------------------------------------
  // Agent detail: nodes, last transitions, recent events, "what happened to" with one click.
  let returnFocus = null;
  function openAgent(id) {
    const a = view.byId.get(id);
    if (!a) return;
    const prev = view.selected;
    view.selected = id;
    for (const x of [prev, id]) {
      const y = x && view.byId.get(x);
      if (y && y.el) y.el.classList.toggle('sel', x === id);
    }
    returnFocus = a.el;
    $('event-detail').hidden = true;
    $('agent-detail').hidden = false;
    $('detail-title').replaceChildren(document.createTextNode(a.agent_id + ' '), stateBadge(a.state));
    const host = view.hostOf.get(a.agent_id);
    $('detail-summary').textContent = [host ? 'host-' + host : null, a.hostname ? 'hostname ' + a.hostname : null, a.endpoint,
      'last heartbeat ' + short(a.last_heartbeat), a.last_transition + ' at ' + short(a.last_transition_at)].filter(Boolean).join(' · ');
    const ask = $('detail-ask');
    ask.textContent = 'What happened to ' + a.agent_id + '?';
    ask.onclick = () => askQuestion('what happened to ' + a.agent_id);
    renderAgentNodes(a);
    $('detail').hidden = false;
    $('detail-close').focus();
    drawTopology();
    loadAgentEvents(a.agent_id);
  }
  function renderAgentNodes(a) {
    $('detail-node-count').textContent = a.nodes.length + ' (' + NODE_STATES.filter((s) => a.counts[s]).map((s) => a.counts[s] + ' ' + s).join(', ') + ')';
    $('detail-nodes').replaceChildren(...a.nodes.map((n) => {
      const tr = el('tr');
      tr.dataset.node = n.node_id;
      const st = el('td'); st.append(stateBadge(n.state));
      if (n.detail) st.append(el('div', n.detail, 'muted'));
      const what = el('td');
      what.append(button('history', () => askQuestion('what happened to ' + n.node_id)));
      // The node's id with its pid and port beneath; the narrow panel has no room for a column each.
      const id = el('td', null, 'nid');
      id.append(el('div', n.node_id), el('div', 'pid ' + (n.pid === null ? '-' : n.pid) + ' · port ' + (n.port === null ? '-' : n.port), 'muted'));
      const last = el('td');
      last.append(el('div', n.last_event.replace(/_/g, ' ')), el('div', short(n.last_event_at), 'muted'));
      tr.append(id, st, el('td', n.restart_count, 'num'), last, what);
      return tr;
    }));
  }
  function eventItem(e) {
    const li = el('li', short(e.timestamp) + '  ' + e.event_type + '  ' + details(e));
    li.tabIndex = 0;
    li.dataset.id = e.id;
    const open = () => showEvent(e.id, true);
    li.addEventListener('click', open);
    li.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') open(); });
    return li;
  }
  async function loadAgentEvents(id) {
    const until = view.at ? '&until=' + encodeURIComponent(iso(view.at)) : '';
    const base = '/api/entities/' + encodeURIComponent(id) + '/events?';
    $('detail-transitions').replaceChildren(el('li', 'loading…', 'empty'));
    $('detail-events').replaceChildren(el('li', 'loading…', 'empty'));
    try {
      const [tr, recent] = await Promise.all([api(base + 'type=' + TRANSITION_TYPES.join(',') + '&limit=10' + until), api(base + 'limit=25' + until)]);
      if (view.selected !== id) return;
      $('detail-transitions').replaceChildren(...(tr.events.length ? tr.events.map(eventItem) : [el('li', 'none', 'empty')]));
      $('detail-events').replaceChildren(...(recent.events.length ? recent.events.map(eventItem) : [el('li', 'none', 'empty')]));
    } catch (e) {
      $('detail-events').replaceChildren(el('li', 'could not load: ' + e.message, 'empty'));
    }
  }
  function closeDetail() {
    $('detail').hidden = true;
    if (returnFocus && document.contains(returnFocus)) focusTile(returnFocus);
  }
  $('detail-close').addEventListener('click', closeDetail);
  $('event-back').addEventListener('click', () => { $('event-detail').hidden = true; $('agent-detail').hidden = false; });

  async function showEvent(id, fromAgent) {
    try {
      const r = await api('/api/events/' + encodeURIComponent(id));
      $('event-title').textContent = r.event.event_type + ' ' + short(r.event.timestamp);
      const t = $('detail-fields');
      t.replaceChildren();
      const add = (k, v) => { const tr = el('tr'); tr.append(el('th', k), el('td', v)); t.append(tr); };
      add('id', r.event.id);
      add('entities', r.event.entities.join(', '));
      for (const [k, v] of Object.entries(r.event.fields)) add(k, v === null ? '-' : v);
      $('detail-adjacency').replaceChildren(...r.adjacency.map((a) => el('li', (a.direction === 'in' ? a.node + ' -> this' : 'this -> ' + a.node) + ' (' + a.kind + ', edge ' + a.edge_type + ')')));
      $('event-back').hidden = !fromAgent;
      $('agent-detail').hidden = true;
      $('event-detail').hidden = false;
      $('detail').hidden = false;
      if (!fromAgent) returnFocus = document.activeElement;
      $('detail-close').focus();
    } catch (e) {}
  }

  // ---------------------------------------------------------------------------------------------------------
  // Topology: agents grouped (by host on an aggregator, else by state or id range), groups collapsible. Labels
  // sit in fixed cells and are cut to fit, so they never overlap. A grid too big to draw whole is drawn as group
  // overviews plus the selected agent's neighbourhood (its nodes, and its group's other agents).
  const collapsed = new Set();
  const WHOLE_AGENTS = 40, WHOLE_NODES = 400;
  const fit = (s, px, charPx) => { const n = Math.max(1, Math.floor(px / (charPx || 6.1))); return s.length <= n ? s : s.slice(0, Math.max(1, n - 1)) + '…'; };
  function groupKey(a, mode) {
    if (mode === 'host') return view.hostOf.has(a.agent_id) ? 'host-' + view.hostOf.get(a.agent_id) : 'host unknown';
    if (mode === 'range') {
      const i = view.idIndex.get(a.agent_id);
      const lo = Math.floor(i / 50) * 50;
      return 'agents ' + (lo + 1) + '-' + (lo + 50);
    }
    return a.problems > 0 && a.state === 'healthy' ? 'healthy, with node problems' : a.state;
  }
  function drawTopology() {
    dash.topologyDraws = (dash.topologyDraws || 0) + 1;
    const svg = $('topology');
    const W = Math.max(320, svg.clientWidth || 800);
    const agents = (view.order || []).filter(agentVisible);
    let mode = $('group-by').value;
    if (mode === 'auto') mode = view.hostOf.size ? 'host' : 'state';
    if (mode === 'range') view.idIndex = new Map(view.agents.map((a) => a.agent_id).sort(compareIds).map((id, i) => [id, i]));
    const groups = new Map();
    for (const a of agents) {
      const k = groupKey(a, mode);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(a);
    }
    const list = [...groups].map(([k, as]) => ({k, as, rank: Math.min(...as.map((a) => a.rank))}))
      .sort((x, y) => x.rank - y.rank || compareIds(x.k, y.k));
    const nodeCount = agents.reduce((n, a) => n + a.nodes.length, 0);
    const whole = agents.length <= WHOLE_AGENTS && nodeCount <= WHOLE_NODES;
    $('topology-mode').textContent = agents.length === 0 ? '' : whole ? 'whole grid' : 'groups, and the neighbourhood of ' + (neighbourhoodAgent(agents) || {agent_id: '-'}).agent_id;
    const out = [];
    let y = 6;
    for (const g of list) y = drawGroup(out, g, y, W, whole);
    if (!whole && agents.length) y = drawNeighbourhood(out, neighbourhoodAgent(agents), y + 8, W);
    if (!agents.length) { out.push(svgEl('text', {x: 8, y: 20}, view.agents.length ? 'No agent matches the filters.' : 'No agents yet.')); y = 30; }
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + (y + 6));
    svg.style.height = (y + 6) + 'px';
    svg.replaceChildren(...out);
  }
  function neighbourhoodAgent(agents) {
    return (view.selected && view.byId.get(view.selected)) || agents[0];
  }
  function groupHeader(out, g, y, W) {
    const counts = {};
    for (const a of g.as) counts[a.state] = (counts[a.state] || 0) + 1;
    const problems = g.as.reduce((n, a) => n + a.problems, 0);
    const open = !collapsed.has(g.k);
    const h = svgEl('g', {class: 'gh', tabindex: '0', role: 'button', 'aria-expanded': String(open), 'data-group': g.k});
    h.append(svgEl('rect', {x: 2, y: y, width: W - 4, height: 18, rx: 3, fill: '#1d252e'}));
    const summary = AGENT_STATES.filter((s) => counts[s]).map((s) => counts[s] + ' ' + s).join(', ') + (problems ? ', ' + problems + ' problem nodes' : '');
    h.append(svgEl('text', {x: 8, y: y + 13}, fit((open ? '▾ ' : '▸ ') + g.k + ' · ' + g.as.length + ' agents · ' + summary, W - 150, 7.2)));
    // A bar of the group's states, in proportion.
    let x = W - 126;
    for (const s of AGENT_STATES) {
      if (!counts[s]) continue;
      const w = 120 * counts[s] / g.as.length;
      h.append(svgEl('rect', {x: x, y: y + 5, width: Math.max(1, w), height: 8, fill: STATE_COLOR[s]}));
      x += w;
    }
    const toggle = () => { if (collapsed.has(g.k)) collapsed.delete(g.k); else collapsed.add(g.k); drawTopology(); const n = $('topology').querySelector('[data-group="' + CSS.escape(g.k) + '"]'); if (n) n.focus(); };
    h.addEventListener('click', toggle);
    h.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); toggle(); } });
    out.push(h);
    return {open, y: y + 22};
  }
  function agentMark(a, x, y, size, group) {
    // Out of the Tab order (a group's header is in it): ArrowDown from the header reaches its agents.
    const g = svgEl('g', {class: 'ag', 'data-agent': a.agent_id, 'data-in': group || '', tabindex: '-1', role: 'button', 'aria-label': agentLabel(a)});
    g.append(svgEl('title', {}, agentLabel(a)));
    g.append(svgEl('rect', {x, y, width: size, height: size, rx: 2, fill: STATE_COLOR[a.state], stroke: view.selected === a.agent_id ? '#ffffff' : 'none', 'stroke-width': 2}));
    if (a.problems) g.append(svgEl('circle', {cx: x + size - 2, cy: y + 2, r: 2.5, fill: '#0b0f13', stroke: '#f85149'}));
    g.addEventListener('click', () => openAgent(a.agent_id));
    return g;
  }
  function drawGroup(out, g, y, W, whole) {
    const head = groupHeader(out, g, y, W);
    y = head.y;
    if (!head.open) return y;
    if (whole) {
      // Every agent in a 104 px column, its nodes listed beneath with their labels.
      const col = 104, cols = Math.max(1, Math.floor((W - 8) / col));
      let rowH = 0;
      g.as.forEach((a, i) => {
        const c = i % cols;
        if (c === 0 && i > 0) { y += rowH; rowH = 0; }
        const x = 6 + c * col;
        const m = agentMark(a, x, y, 12, g.k);
        m.append(svgEl('text', {x: x + 16, y: y + 10, class: 'lab'}, fit((ICON[a.state] || '') + ' ' + a.agent_id, col - 20)));
        out.push(m);
        a.nodes.forEach((n, k) => {
          const ny = y + 18 + k * 13;
          out.push(svgEl('line', {x1: x + 6, y1: y + 12, x2: x + 6, y2: ny, stroke: '#3a444f'}));
          const dot = svgEl('circle', {cx: x + 6, cy: ny, r: 4, fill: STATE_COLOR[n.state] || '#888'});
          dot.append(svgEl('title', {}, n.node_id + ' ' + n.state));
          out.push(dot, svgEl('text', {x: x + 14, y: ny + 3}, fit(n.node_id + ' ' + (ICON[n.state] || ''), col - 18)));
        });
        rowH = Math.max(rowH, 24 + a.nodes.length * 13);
      });
      return y + rowH + 4;
    }
    // Overview: small squares, no labels (a title each); problems first.
    const size = 10, step = 12, cols = Math.max(1, Math.floor((W - 12) / step));
    g.as.forEach((a, i) => out.push(agentMark(a, 6 + (i % cols) * step, y + Math.floor(i / cols) * step, size, g.k)));
    return y + Math.ceil(g.as.length / cols) * step + 6;
  }
  function drawNeighbourhood(out, a, y, W) {
    if (!a) return y;
    const g = svgEl('g', {class: 'nb'});
    g.append(svgEl('text', {x: 6, y: y + 12, class: 'lab'}, fit('Neighbourhood of ' + a.agent_id + ' (' + a.state + '): its ' + a.nodes.length + ' nodes' + (view.hostOf.get(a.agent_id) ? ' on host-' + view.hostOf.get(a.agent_id) : ''), W - 12, 6.5)));
    y += 20;
    const m = agentMark(a, 6, y, 16);
    m.append(svgEl('text', {x: 28, y: y + 12, class: 'lab'}, fit((ICON[a.state] || '') + ' ' + a.agent_id + ' · ' + a.state, W - 40)));
    g.append(m);
    y += 24;
    // The nodes in rows beneath the agent, a trunk down the left with a branch to each row (no line crosses a label).
    const col = 128, cols = Math.max(1, Math.floor((W - 32) / col));
    const rows = Math.ceil(a.nodes.length / cols);
    if (rows) g.append(svgEl('line', {x1: 14, y1: y - 8, x2: 14, y2: y + (rows - 1) * 16, stroke: '#3a444f'}));
    for (let r = 0; r < rows; r++) g.append(svgEl('line', {x1: 14, y1: y + r * 16, x2: 24, y2: y + r * 16, stroke: '#3a444f'}));
    a.nodes.forEach((n, k) => {
      const x = 30 + (k % cols) * col, ny = y + Math.floor(k / cols) * 16;
      const dot = svgEl('circle', {cx: x, cy: ny, r: 5, fill: STATE_COLOR[n.state] || '#888', class: 'nd', 'data-node': n.node_id});
      dot.append(svgEl('title', {}, n.node_id + ' ' + n.state + (n.detail ? ': ' + n.detail : '')));
      g.append(dot, svgEl('text', {x: x + 9, y: ny + 3}, fit(n.node_id + ' ' + (ICON[n.state] || '') + n.state, col - 14)));
    });
    out.push(g);
    return y + Math.ceil(a.nodes.length / cols) * 16 + 4;
  }
  // Keyboard in the topology: ArrowDown on a group's header goes to its first agent; arrows move between the
  // group's agents, Enter opens one, ArrowUp from the first (or Escape) goes back to the header.
  $('topology').addEventListener('keydown', (ev) => {
    const t = document.activeElement;
    const header = (k) => [...$('topology').querySelectorAll('.gh')].find((h) => h.dataset.group === k);
    if (t.classList.contains('gh') && ev.key === 'ArrowDown') {
      const first = [...$('topology').querySelectorAll('.ag')].find((m) => m.dataset.in === t.dataset.group);
      if (first) { ev.preventDefault(); first.focus(); }
      return;
    }
    if (!t.classList.contains('ag')) return;
    const marks = [...$('topology').querySelectorAll('.ag')].filter((m) => m.dataset.in === t.dataset.in);
    const i = marks.indexOf(t);
    if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); openAgent(t.dataset.agent); return; }
    const to = {ArrowRight: i + 1, ArrowLeft: i - 1, ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: marks.length - 1}[ev.key];
    if (ev.key === 'Escape' || (to !== undefined && to < 0)) { const h = header(t.dataset.in); if (h) { ev.preventDefault(); ev.stopPropagation(); h.focus(); } return; }
    if (to === undefined) return;
    ev.preventDefault();
    marks[Math.min(marks.length - 1, to)].focus();
  });
  $('group-by').addEventListener('change', drawTopology);
  window.addEventListener('resize', () => { clearTimeout(window.__rt); window.__rt = setTimeout(() => { drawTopology(); refreshChart().catch(() => {}); }, 200); });

  // ---------------------------------------------------------------------------------------------------------
  // Search inside events (README, "Searching text"): the store's words are runs of letters and digits, lowercased.
  const WORD = /[\p{L}\p{N}\p{M}]+/gu;
  const wordsOf = (s) => (String(s).match(WORD) || []).map((w) => w.toLowerCase());
  let search = null, nextCursor = null;  // search: {text, words: Set, phrases: [[word]]}
  function parseSearch(text) {
    const words = new Set(), phrases = [];
    text.split('"').forEach((p, k) => { const w = wordsOf(p); w.forEach((x) => words.add(x)); if (k % 2 === 1 && w.length > 1) phrases.push(w); });
    return words.size ? {text, words, phrases} : null;
  }
  // The live stream's own check of a search (the history comes from the store's word index).
  function textMatches(e) {
    if (!search) return true;
    const fields = Object.values(e.fields || {}).filter((v) => typeof v === 'string').map(wordsOf);
    const all = new Set(fields.flat());
    for (const w of search.words) if (!all.has(w)) return false;
    return search.phrases.every((p) => fields.some((f) => f.some((_, i) => p.every((w, k) => f[i + k] === w))));
  }
  // Text with the searched words in <mark>: text nodes and elements only, never parsed as HTML.
  function highlighted(tag, text) {
    const node = el(tag);
    const s = String(text);
    if (!search) { node.textContent = s; return node; }
    let at = 0;
    for (const m of s.matchAll(WORD)) {
      if (!search.words.has(m[0].toLowerCase())) continue;
      if (m.index > at) node.append(document.createTextNode(s.slice(at, m.index)));
      node.append(el('mark', m[0]));
      at = m.index + m[0].length;
    }
    if (at < s.length) node.append(document.createTextNode(s.slice(at)));
    return node;
  }

  // Live stream: rows capped at MAX_ROWS, arrivals batched into one DOM update every 100 ms.
  let paused = false, source = null, pending = [], flushTimer = null, missed = 0;
  function matches(e) {
    const ent = $('f-entity').value.trim();
    return (!filters.eventTypes || filters.eventTypes.includes(e.event_type)) && (!ent || (e.entities || []).includes(ent)) && textMatches(e);
  }
  function row(e) {
    const tr = el('tr', null, 'sev-' + (SEVERITY[e.event_type] || 'info'));
    tr.dataset.id = e.id;
    tr.tabIndex = 0;
    tr.append(el('td', short(e.timestamp)), el('td', e.event_type), el('td', (e.entities || []).join(', ')), highlighted('td', details(e)));
    tr.addEventListener('click', () => showEvent(e.id, false));
    tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') showEvent(e.id, false); });
    return tr;
  }
  function flush() {
    flushTimer = null;
    const body = $('stream');
    const batch = pending.splice(0);
    const rows = batch.filter(matches).slice(-MAX_ROWS).map(row).reverse();
    if (rows.length) body.prepend(...rows);
    while (body.children.length > MAX_ROWS) body.lastChild.remove();
  }
  function addEvent(e) {
    dash.streamReceived++;
    if (view.at) { missed++; $('stream-note').textContent = missed + ' live event(s) since you left live'; return; }
    if (ALERT_TYPES.includes(e.event_type)) addAlert(e, true);
    if (AGENT_TYPES.includes(e.event_type) && e.event_type !== 'agent_heartbeat' || NODE_TYPES.includes(e.event_type)) agentsPoll.soon(400);
    if (e.event_type === 'node_crashed' || FAILURE_TYPES.includes(e.event_type)) hourlyPoll.soon(1000);
    if (paused) return;
    pending.push(e);
    if (pending.length > MAX_ROWS) pending.splice(0, pending.length - MAX_ROWS);
    if (!flushTimer) flushTimer = setTimeout(flush, 100);
  }
  // The newest 100 events (of the filters and the search); `more` appends the next page of a search.
  async function loadEvents(more) {
    const token = view.token;
    let q = '/api/events?limit=100';
    if (filters.eventTypes) q += '&type=' + filters.eventTypes.join(',');
    const ent = $('f-entity').value.trim();
    if (ent) q += '&entity=' + encodeURIComponent(ent);
    if (view.at) q += '&until=' + encodeURIComponent(iso(view.at));
    if (search) q += '&text=' + encodeURIComponent(search.text);
    if (more === true && nextCursor) q += '&cursor=' + encodeURIComponent(nextCursor);
    try {
      const r = await api(q);
      if (token !== view.token) return;
      pending = [];
      if (more === true) $('stream').append(...r.events.map(row)); else $('stream').replaceChildren(...r.events.map(row));
      nextCursor = search ? r.next_cursor || null : null;
      $('more').hidden = !nextCursor;
      if (search) $('search-status').textContent = fmt($('stream').children.length) + (nextCursor ? '+' : '') + ' events mention ' + search.text;
    } catch (e) {
      $('stream').replaceChildren(el('tr', 'could not load events: ' + e.message));
    }
  }
  function setSearch(text) {
    search = parseSearch(text.trim());
    nextCursor = null;
    $('search-status').textContent = text.trim() && !search ? 'search for letters or digits' : '';
    loadEvents();
  }
  // The stream's pill: connected and shown (live), connected but held while the page shows the past, or down.
  let streamOpen = null;
  function showStreamStatus() {
    const s = $('stream-status');
    if (streamOpen === null) return;
    const [text, cls] = !streamOpen ? ['✕ reconnecting', 'status down'] : view.at ? ['⏸ past view', 'status'] : ['● live', 'status live'];
    s.textContent = text;
    s.className = cls;
  }
  function connect() {
    if (source) source.close();
    source = new EventSource('/api/events/stream');
    source.addEventListener('open', () => { streamOpen = true; showStreamStatus(); });
    source.addEventListener('error', () => {
      streamOpen = false;
      showStreamStatus();
      // EventSource gives up on an answer other than 200 (a 401 once the session is gone): ask why.
      if (source.readyState === EventSource.CLOSED) {
        fetch('/api/session').then((r) => { if (r.status === 401) signedOut(); else setTimeout(connect, 3000); }, () => setTimeout(connect, 3000));
      }
    });
    source.addEventListener('grid_event', (m) => { try { addEvent(JSON.parse(m.data)); } catch (e) {} });
  }
  $('pause').addEventListener('click', () => { paused = !paused; $('pause').textContent = paused ? 'Resume' : 'Pause'; if (!paused) loadEvents(); });
  $('f-type').addEventListener('change', () => { const t = $('f-type').value; setFilter({eventTypes: t ? [t] : null}); });
  $('f-entity').addEventListener('change', loadEvents);
  $('f-text').addEventListener('change', () => setSearch($('f-text').value));
  $('f-text').addEventListener('search', () => setSearch($('f-text').value));
  $('more').addEventListener('click', () => loadEvents(true));

  // ---------------------------------------------------------------------------------------------------------
  // Alerts, acknowledged in this browser.
  let acked = new Set();
  try { acked = new Set(JSON.parse(localStorage.getItem('grid-acked') || '[]')); } catch (e) {}
  const alerted = new Set();
  function addAlert(e, live) {
    if (acked.has(e.id) || alerted.has(e.id)) return;
    alerted.add(e.id);
    const li = el('li', null, SEVERITY[e.event_type] || 'info');
    li.dataset.id = e.id;
    const what = el('span', e.event_type + ' ' + (e.entities || []).join(', ') + ' ' + details(e), 'what');
    const ack = button('Ack', () => {
      acked.add(e.id);
      try { localStorage.setItem('grid-acked', JSON.stringify([...acked].slice(-1000))); } catch (x) {}
      li.remove();
      $('alerts-count').textContent = $('alerts').children.length + ' open';
    });
    ack.disabled = !!view.at;
    li.append(el('span', short(e.timestamp)), what, ack);
    li.dataset.ts = e.timestamp;
    const list = $('alerts');
    const empty = list.querySelector('li.empty');
    if (empty) empty.remove();
    const before = live ? list.firstChild : [...list.children].find((x) => x.dataset.ts < e.timestamp);
    list.insertBefore(li, before || null);
    while (list.children.length > MAX_ALERTS) list.lastChild.remove();
    // The ids seen stay bounded too: past a limit, only those still listed are remembered.
    if (alerted.size > 20 * MAX_ALERTS) { alerted.clear(); for (const x of list.children) alerted.add(x.dataset.id); }
    $('alerts-count').textContent = list.children.length + ' open';
  }
  async function loadAlerts() {
    const token = view.token;
    const r = await api('/api/events?type=' + ALERT_TYPES.join(',') + '&limit=' + MAX_ALERTS + (view.at ? '&until=' + encodeURIComponent(iso(view.at)) : ''));
    if (token !== view.token) return;
    $('alerts').replaceChildren();
    alerted.clear();
    r.events.forEach((e) => addAlert(e, false));
    if (!$('alerts').children.length) $('alerts').append(el('li', 'No open alerts.', 'empty'));
    $('alerts-count').textContent = [...$('alerts').children].filter((x) => x.dataset.id).length + ' open' + (view.at ? ' as of ' + short(iso(view.at)) : '');
  }

  // ---------------------------------------------------------------------------------------------------------
  // Questions, with suggestions as you type.
  function suggest() {
    const q = $('question').value.toLowerCase().trim();
    const hits = EXAMPLES.filter((x) => !q || x.includes(q) || q.split(' ').some((w) => w.length > 2 && x.includes(w))).slice(0, 6);
    $('suggestions').replaceChildren(...hits.map((x) => { const o = document.createElement('option'); o.value = x; return o; }));
    $('suggest-list').replaceChildren(...hits.map((x) => button(x, () => askQuestion(x))));
  }
  function askQuestion(q) {
    $('question').value = q;
    ask();
    $('question').scrollIntoView({block: 'nearest'});
  }
  $('question').addEventListener('input', suggest);
  $('ask').addEventListener('submit', (ev) => { ev.preventDefault(); ask(); });
  async function ask() {
    const out = $('answer');
    out.replaceChildren();
    $('interpretation').textContent = '';
    try {
      const r = await api('/api/grid/events/query', {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({query: $('question').value})});
      $('interpretation').textContent = 'Understood: ' + r.interpretation.sentence;
      const res = r.result;
      if (res.kind === 'count') {
        out.append(el('div', res.count, 'big count'));
        out.append(table(['key', 'count'], res.breakdown.map((b) => [b.key, b.count])));
      } else if (res.kind === 'groups') {
        out.append(table(['key', 'count'], res.groups.map((b) => [b.key, b.count])));
      } else {
        const evs = res.events || [];
        if (!evs.length) out.append(el('p', 'No events.', 'empty'));
        else out.append(table(['time', 'type', 'entities', 'details'], evs.map((e) => [short(e.timestamp), e.event_type, e.entities.join(', '), details(e)])));
      }
    } catch (e) {
      $('interpretation').textContent = e.message;
      const s = e.body && e.body.error && e.body.error.suggestions;
      if (s) out.append(el('p', 'Try: ' + s.join(' | ')));
    }
  }
  function table(head, rows) {
    const t = el('table');
    const tr = el('tr');
    head.forEach((h) => tr.append(el('th', h)));
    t.append(tr);
    rows.forEach((r) => { const x = el('tr'); r.forEach((c) => x.append(el('td', c))); t.append(x); });
    return t;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Timeline chart (SVG drawn here); when travelling, a line marks the moment.
  async function refreshChart() {
    const minutes = Number($('window').value);
    const d = await api('/api/timeline?minutes=' + minutes);
    const svg = $('chart');
    const w = svg.clientWidth || 800, h = 200, pad = 30;
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    const types = Object.keys(d.series);
    const n = d.buckets;
    const totals = new Array(n).fill(0);
    types.forEach((t) => d.series[t].forEach((c, i) => { totals[i] += c; }));
    const max = Math.max(1, ...totals);
    const bw = (w - pad) / n;
    const stack = new Array(n).fill(0);
    const out = [];
    types.forEach((t) => {
      const color = colorOf(t);
      d.series[t].forEach((c, i) => {
        if (!c) return;
        const bh = (h - pad) * c / max;
        stack[i] += bh;
        const r = svgEl('rect', {x: pad + i * bw, y: h - pad - stack[i], width: Math.max(1, bw - 1), height: bh, fill: color});
        r.dataset.type = t;
        r.append(svgEl('title', {}, t + ': ' + c));
        out.push(r);
      });
    });
    out.push(svgEl('text', {x: 2, y: 12, fill: '#9aa5b1', 'font-size': 10}, String(max)));
    out.push(svgEl('text', {x: pad, y: h - 8, fill: '#9aa5b1', 'font-size': 10}, short(d.start)));
    const start = Date.parse(d.start), span = n * d.bucket_seconds * 1000;
    if (view.at && view.at >= start && view.at <= start + span) {
      const x = pad + (w - pad) * (view.at - start) / span;
      out.push(svgEl('line', {x1: x, y1: 0, x2: x, y2: h - pad, stroke: '#ffffff', 'stroke-dasharray': '4 3'}));
      out.push(svgEl('text', {x: Math.min(x + 4, w - 120), y: 12, fill: '#ffffff', 'font-size': 10}, 'as of ' + short(iso(view.at))));
    }
    svg.replaceChildren(...out);
    $('legend').replaceChildren(...types.map((t) => { const s = el('span', t); const i = el('i'); i.style.background = colorOf(t); s.prepend(i); return s; }));
  }
  $('window').addEventListener('change', () => chartPoll.now());

  // ---------------------------------------------------------------------------------------------------------
  // Time travel: the slider (oldest event to now) and /?at=RFC3339 links show the whole dashboard as of a moment.
  const slider = $('at-slider');
  let range = null;
  function updateSliderRange() {
    const s = view.stats;
    const oldest = s && s.oldest ? Date.parse(s.oldest) : Date.now() - 86400000;
    const now = Date.now();
    range = {min: Math.min(oldest, view.at || now), max: now};
    slider.max = '1000';
    if (!slider.matches(':active') && document.activeElement !== slider) slider.value = view.at ? String(Math.round(1000 * (view.at - range.min) / Math.max(1, range.max - range.min))) : '1000';
  }
  const sliderMoment = () => range ? Math.round(range.min + (range.max - range.min) * Number(slider.value) / 1000) : Date.now();
  slider.addEventListener('input', () => {
    const v = Number(slider.value);
    const text = v >= 1000 ? 'live' : short(iso(sliderMoment()));
    $('at-label').textContent = text;
    slider.setAttribute('aria-valuetext', text);
  });
  slider.addEventListener('change', () => setAt(Number(slider.value) >= 1000 ? null : sliderMoment()));
  $('live-btn').addEventListener('click', () => setAt(null));
  function setBanner(text, error) {
    const b = $('travel-banner');
    b.hidden = !text;
    b.textContent = text || '';
    b.className = 'banner' + (error ? ' error' : '');
  }
  function setTravelBanner() {
    if (!view.at) { setBanner(''); return; }
    setBanner('Viewing the grid as of ' + short(iso(view.at)) + ' (tiles, agents, topology, alerts and events up to that moment). Press "Back to live" to return.');
    const b = $('travel-banner');
    b.append(' ', button('Back to live', () => setAt(null)));
  }
  function setAt(ms) {
    view.at = ms;
    view.token++;
    missed = 0;
    $('stream-note').textContent = ms ? 'events up to ' + short(iso(ms)) : '';
    const url = new URL(location.href);
    if (ms) url.searchParams.set('at', iso(ms)); else url.searchParams.delete('at');
    history.replaceState(null, '', url);
    $('at-label').textContent = ms ? short(iso(ms)) : 'live';
    $('live-btn').hidden = !ms;
    document.body.classList.toggle('travelling', !!ms);
    setTravelBanner();
    showStreamStatus();
    updateSliderRange();
    agentsPoll.now();
    hourlyPoll.now();
    hostsPoll.now();
    chartPoll.now();
    loadAlerts().catch(() => {});
    loadEvents();
    if (!ms) statsPoll.now();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Start: each refresh is a poll that waits for its answer before the next; nothing polls while in the past.
  const live = (ms) => () => (view.at ? null : ms);
  const statsPoll = poller('stats', refreshStats, () => 2000);
  const agentsPoll = poller('agents', refreshAgents, live(REFRESH_MS));
  const hourlyPoll = poller('hourly', refreshHourly, live(10000));
  const hostsPoll = poller('hosts', refreshHosts, live(60000));
  const chartPoll = poller('chart', refreshChart, live(10000));
  window.addEventListener('error', (e) => { if (dash.errors.length < 50) dash.errors.push(String(e.message)); });

  TYPES.forEach((t) => { const o = el('option', t); o.value = t; $('f-type').append(o); });
  buildTiles();
  buildLegend();
  suggest();
  const atParam = params.get('at');
  if (atParam) {
    const ms = Date.parse(atParam);
    if (isNaN(ms)) setBanner('Not a moment: ?at=' + atParam + ' (use RFC 3339, like 2026-11-29T10:00:00Z). Showing live.', true);
    else { view.at = ms; $('at-label').textContent = short(iso(ms)); $('live-btn').hidden = false; setTravelBanner(); }
  }
  statsPoll.now().then(() => hostsPoll.now());
  agentsPoll.now();
  hourlyPoll.now();
  chartPoll.now();
  loadAlerts().catch(() => {});
  if (params.get('text')) { $('f-text').value = params.get('text'); search = parseSearch(params.get('text')); }
  loadEvents();
  if (params.get('stream') !== 'off') connect();
  // Sign out: shown when this page was opened with a session cookie.
  api('/api/session').then((s) => {
    dash.auth = s.auth;
    $('signout').hidden = s.auth !== 'cookie';
  }, () => {});
  $('signout').addEventListener('click', () => {
    fetch('/api/session', {method: 'DELETE'}).finally(() => { reloading = true; location.reload(); });
  });
  if (params.get('q')) { $('question').value = params.get('q'); ask(); }
})();
