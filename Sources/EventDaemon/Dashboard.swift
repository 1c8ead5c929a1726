/// The dashboard served at `/`: static HTML, CSS and JavaScript embedded in the daemon, no build step and no
/// network fetch beyond this daemon's own API. Every piece of event content is put in the page with
/// `textContent` (never as HTML), so an event whose fields hold `<script>` shows as text.
public enum Dashboard {
    public static let html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Sutra Grid Events</title>
        <link rel="stylesheet" href="/dashboard.css">
        </head>
        <body>
        <header>
          <h1>Sutra Grid Events</h1>
          <div id="health" class="health" aria-label="store health">
            <span>events <b id="h-events">-</b></span>
            <span>on disk <b id="h-bytes">-</b></span>
            <span>ingest <b id="h-rate">-</b>/s</span>
            <span>segments <b id="h-segments">-</b></span>
            <span id="stream-status" class="status">connecting</span>
          </div>
        </header>
        <main>
          <section id="agents-panel" class="panel wide">
            <h2>Agents</h2>
            <div id="agents" class="cards"></div>
            <h3>Topology</h3>
            <svg id="topology" role="img" aria-label="agents and their nodes"></svg>
          </section>
          <section class="panel">
            <h2>Ask</h2>
            <form id="ask">
              <input id="question" list="suggestions" autocomplete="off" placeholder="show spawn failures today" maxlength="500">
              <datalist id="suggestions"></datalist>
              <button type="submit">Ask</button>
            </form>
            <div id="suggest-list" class="suggest"></div>
            <p id="interpretation" class="interpretation"></p>
            <div id="answer"></div>
          </section>
          <section class="panel">
            <h2>Alerts</h2>
            <ul id="alerts" class="alerts"></ul>
          </section>
          <section class="panel wide">
            <h2>Timeline <select id="window"><option value="60">last hour</option><option value="360">last 6 hours</option><option value="1440">last day</option></select></h2>
            <svg id="chart" role="img" aria-label="events per type over time"></svg>
            <div id="legend" class="legend"></div>
          </section>
          <section class="panel wide">
            <h2>Live events
              <select id="f-type"><option value="">all types</option></select>
              <input id="f-entity" placeholder="entity (agent-001)" size="16">
              <input id="f-text" type="search" placeholder="search: disk full, &quot;connection refused&quot;" size="28" maxlength="500">
              <button id="pause" type="button">Pause</button>
            </h2>
            <p id="search-status" class="interpretation"></p>
            <table class="events"><thead><tr><th>time</th><th>type</th><th>entities</th><th>details</th></tr></thead>
            <tbody id="stream"></tbody></table>
            <button id="more" type="button" hidden>Older matches</button>
          </section>
          <aside id="detail" class="detail" hidden>
            <button id="detail-close" type="button">Close</button>
            <h2 id="detail-title"></h2>
            <table id="detail-fields"></table>
            <h3>Adjacency</h3>
            <ul id="detail-adjacency"></ul>
          </aside>
        </main>
        <script src="/dashboard.js"></script>
        </body>
        </html>
        """

    public static let css = """
        *{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;background:#0f1419;color:#e6e6e6}
        header{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;padding:10px 16px;background:#161c23;border-bottom:1px solid #2a323c}
        h1{font-size:18px;margin:0}h2{font-size:15px;margin:0 0 8px;display:flex;gap:8px;align-items:center;flex-wrap:wrap}h3{font-size:13px;margin:12px 0 6px;color:#9aa5b1}
        .health{display:flex;gap:14px;flex-wrap:wrap}.health b{color:#fff}.status{padding:1px 8px;border-radius:9px;background:#444}.status.live{background:#1f7a3a}.status.down{background:#8a1f1f}
        main{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:12px;padding:12px}.panel{background:#161c23;border:1px solid #2a323c;border-radius:6px;padding:10px;min-width:0}.wide{grid-column:1/-1}
        @media (max-width:800px){main{grid-template-columns:1fr}.detail{width:100%!important}}
        .cards{display:flex;flex-wrap:wrap;gap:8px}.card{border:1px solid #2a323c;border-left:5px solid #666;border-radius:4px;padding:8px;min-width:200px;flex:1 1 220px;max-width:360px}
        .card.healthy{border-left-color:#2ea043}.card.degraded{border-left-color:#d29922}.card.offline{border-left-color:#f85149}.card.unregistered{border-left-color:#6e7681}
        .card .state{font-weight:600;text-transform:uppercase;font-size:12px}.card ul{margin:6px 0 0;padding-left:16px}
        .node-running,.node-restarted{color:#3fb950}.node-crashed,.node-failed{color:#f85149}.node-stopped{color:#8b949e}.node-starting,.node-stopping{color:#d29922}
        svg{width:100%;background:#0f1419;border-radius:4px}#topology{height:180px}#chart{height:220px}
        form{display:flex;gap:6px}input,select,button{background:#0f1419;color:#e6e6e6;border:1px solid #3a444f;border-radius:4px;padding:5px 8px;font:inherit}input#question{flex:1;min-width:0}button{cursor:pointer}
        .suggest span{display:inline-block;margin:4px 4px 0 0;padding:2px 8px;border:1px solid #3a444f;border-radius:10px;cursor:pointer;font-size:12px;color:#9aa5b1}
        .interpretation{color:#9aa5b1;font-style:italic}.big{font-size:32px;font-weight:700}
        table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 6px;border-bottom:1px solid #222a33;vertical-align:top;word-break:break-word}th{color:#9aa5b1;font-weight:500}
        .events tbody tr{cursor:pointer}.events tbody tr:hover{background:#1d252e}.sev-error td:nth-child(2){color:#f85149}.sev-warning td:nth-child(2){color:#d29922}.sev-info td:nth-child(2){color:#58a6ff}
        .alerts{list-style:none;margin:0;padding:0;max-height:260px;overflow:auto}.alerts li{display:flex;justify-content:space-between;gap:8px;padding:4px 0;border-bottom:1px solid #222a33}.alerts li.error .what{color:#f85149}.alerts li.warning .what{color:#d29922}
        .legend span{display:inline-block;margin-right:10px;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
        .detail{position:fixed;top:0;right:0;width:420px;height:100%;overflow:auto;background:#161c23;border-left:1px solid #2a323c;padding:12px;z-index:10}
        .empty{color:#6e7681}mark{background:#6b5a12;color:#fff;border-radius:2px;padding:0 1px}
        """

    public static let javascript = """
        'use strict';
        const $ = (id) => document.getElementById(id);
        const SEVERITY = {spawn_failed:'error',stop_failed:'error',node_crashed:'error',cluster_critical:'error',agent_offline:'error',
          agent_degraded:'warning',cluster_degraded:'warning',events_dropped:'warning',node_restarted:'warning'};
        const ALERT_TYPES = ['node_crashed','spawn_failed','stop_failed','agent_offline','cluster_degraded','cluster_critical'];
        const TYPES = ['agent_registered','agent_heartbeat','agent_degraded','agent_offline','agent_recovered','agent_unregistered',
          'spawn_requested','spawn_succeeded','spawn_failed','stop_requested','stop_succeeded','stop_failed','node_crashed',
          'node_restarted','cluster_healthy','cluster_degraded','cluster_critical','storage_metrics','events_dropped'];
        const EXAMPLES = ['show spawn failures today','spawn events today','count spawn failures this week','what happened to agent-001',
          'agent-001 timeline',"what's the crash history of node-7",'how many nodes crashed this week',
          'which agents went offline in the last hour','show the events leading to node-7 crash','top 5 agents by failures this week',
          'show stop failures since 14:00','count heartbeats in the last 10 minutes','show alerts today'];
        const COLORS = ['#58a6ff','#3fb950','#d29922','#f85149','#bc8cff','#39c5cf','#ff7b72','#e3b341','#8b949e','#56d364','#a5d6ff','#ffa657','#d2a8ff','#79c0ff','#7ee787','#f0883e','#db61a2','#c9d1d9','#6e7681'];
        const colorOf = (t) => COLORS[(TYPES.indexOf(t) + COLORS.length) % COLORS.length];
        const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; };
        const svgEl = (tag, attrs) => { const e = document.createElementNS('http://www.w3.org/2000/svg', tag); for (const k in attrs) e.setAttribute(k, attrs[k]); return e; };
        const short = (t) => t ? t.replace('T', ' ').replace(/\\.\\d+Z$/, 'Z') : '-';
        const bytes = (n) => n > 1e9 ? (n / 1e9).toFixed(2) + ' GB' : n > 1e6 ? (n / 1e6).toFixed(1) + ' MB' : n > 1e3 ? (n / 1e3).toFixed(1) + ' kB' : n + ' B';
        const details = (e) => Object.entries(e.fields || {}).filter(([k]) => k !== 'agent_id' && k !== 'node_id').map(([k, v]) => k + '=' + (v === null ? '-' : v)).join(' ');
        async function api(path, options) {
          const r = await fetch(path, options);
          const body = await r.json().catch(() => ({}));
          if (!r.ok) { const err = new Error((body.error && body.error.message) || ('HTTP ' + r.status)); err.body = body; throw err; }
          return body;
        }

        // Store health.
        async function refreshStats() {
          try {
            const s = await api('/api/stats');
            $('h-events').textContent = s.events.toLocaleString();
            $('h-bytes').textContent = bytes(s.disk_bytes);
            $('h-rate').textContent = Math.round(s.ingest.rate_per_second).toLocaleString();
            $('h-segments').textContent = s.segments;
          } catch (e) { $('h-events').textContent = '?'; }
        }

        // Agents and topology.
        async function refreshAgents() {
          let data;
          try { data = await api('/api/grid/agents'); } catch (e) { return; }
          const box = $('agents');
          box.replaceChildren();
          if (!data.agents.length) box.append(el('p', 'No agents have registered yet.', 'empty'));
          for (const a of data.agents) {
            const card = el('div', null, 'card ' + a.state);
            card.dataset.agent = a.agent_id;
            card.append(el('div', a.agent_id, 'name'), el('div', a.state, 'state'),
              el('div', 'last heartbeat ' + short(a.last_heartbeat)), el('div', a.last_transition + ' at ' + short(a.last_transition_at)));
            const ul = el('ul');
            for (const n of a.nodes) {
              const li = el('li', n.node_id + ' ' + n.state + (n.pid ? ' pid ' + n.pid : '') + (n.port ? ' :' + n.port : ''), 'node-' + n.state);
              li.dataset.node = n.node_id;
              ul.append(li);
            }
            if (!a.nodes.length) ul.append(el('li', 'no nodes', 'empty'));
            card.append(ul);
            box.append(card);
          }
          drawTopology(data.agents);
        }
        function drawTopology(agents) {
          const svg = $('topology');
          svg.replaceChildren();
          const w = svg.clientWidth || 800, h = 180;
          svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
          const colors = {healthy:'#2ea043',degraded:'#d29922',offline:'#f85149',unregistered:'#6e7681'};
          const nodeColors = {running:'#3fb950',restarted:'#3fb950',crashed:'#f85149',failed:'#f85149',stopped:'#8b949e',starting:'#d29922',stopping:'#d29922'};
          agents.forEach((a, i) => {
            const x = (i + 0.5) * w / Math.max(agents.length, 1);
            a.nodes.forEach((n, k) => {
              const nx = x + (k - (a.nodes.length - 1) / 2) * 46, ny = 135;
              svg.append(svgEl('line', {x1: x, y1: 40, x2: nx, y2: ny - 10, stroke: '#3a444f'}));
              svg.append(svgEl('circle', {cx: nx, cy: ny, r: 9, fill: nodeColors[n.state] || '#888'}));
              const t = svgEl('text', {x: nx, y: ny + 24, 'text-anchor': 'middle', fill: '#9aa5b1', 'font-size': 10}); t.textContent = n.node_id; svg.append(t);
            });
            svg.append(svgEl('rect', {x: x - 50, y: 18, width: 100, height: 26, rx: 5, fill: colors[a.state] || '#666'}));
            const t = svgEl('text', {x: x, y: 36, 'text-anchor': 'middle', fill: '#fff', 'font-size': 12}); t.textContent = a.agent_id; svg.append(t);
          });
        }

        // Text search: the store's words (README, "Searching text"): runs of letters and digits, lowercased.
        const WORD = /[\\p{L}\\p{N}\\p{M}]+/gu;
        const wordsOf = (s) => (String(s).match(WORD) || []).map((w) => w.toLowerCase());
        let search = null;  // {text, words: Set, phrases: [[word]]}
        function parseSearch(text) {
          const parts = text.split('"');
          const words = new Set(), phrases = [];
          parts.forEach((p, k) => { const w = wordsOf(p); w.forEach((x) => words.add(x)); if (k % 2 === 1 && w.length > 1) phrases.push(w); });
          return words.size ? {text, words, phrases} : null;
        }
        const stringFields = (e) => Object.values(e.fields || {}).filter((v) => typeof v === 'string');
        // The live stream's own check of a search (the history comes from the store's index).
        function textMatches(e) {
          if (!search) return true;
          const fields = stringFields(e).map(wordsOf);
          const all = new Set(fields.flat());
          for (const w of search.words) if (!all.has(w)) return false;
          return search.phrases.every((p) => fields.some((f) => f.some((_, i) => p.every((w, k) => f[i + k] === w))));
        }
        // Text with the searched words in <mark>: built from text nodes, never parsed as HTML.
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

        // Live stream.
        let paused = false, source = null, nextCursor = null;
        const MAX_ROWS = 200;
        function matches(e) {
          const t = $('f-type').value, ent = $('f-entity').value.trim();
          return (!t || e.event_type === t) && (!ent || (e.entities || []).includes(ent)) && textMatches(e);
        }
        function row(e) {
          const tr = el('tr', null, 'sev-' + (SEVERITY[e.event_type] || 'info'));
          tr.dataset.id = e.id;
          tr.append(el('td', short(e.timestamp)), el('td', e.event_type), el('td', (e.entities || []).join(', ')), highlighted('td', details(e)));
          tr.addEventListener('click', () => showDetail(e.id));
          return tr;
        }
        function addEvent(e) {
          if (ALERT_TYPES.includes(e.event_type)) addAlert(e);
          if (paused || !matches(e)) return;
          const body = $('stream');
          body.prepend(row(e));
          while (body.children.length > MAX_ROWS) body.lastChild.remove();
        }
        async function loadRecent() {
          $('more').hidden = true;
          if (search) return loadMatches(false);
          $('search-status').textContent = '';
          try {
            const r = await api('/api/grid/events/recent?limit=100');
            const body = $('stream');
            body.replaceChildren(...r.events.filter(matches).map(row));
            r.events.slice().reverse().filter((e) => ALERT_TYPES.includes(e.event_type)).forEach(addAlert);
          } catch (e) {}
        }
        // A search reads the history through the word index, newest first, then the stream adds new matches.
        async function loadMatches(more) {
          const p = new URLSearchParams({text: search.text, limit: '100'});
          if ($('f-type').value) p.set('type', $('f-type').value);
          if ($('f-entity').value.trim()) p.set('entity', $('f-entity').value.trim());
          if (more && nextCursor) p.set('cursor', nextCursor);
          try {
            const r = await api('/api/events?' + p.toString());
            const body = $('stream');
            if (more) body.append(...r.events.map(row)); else body.replaceChildren(...r.events.map(row));
            nextCursor = r.next_cursor || null;
            $('more').hidden = !nextCursor;
            $('search-status').textContent = body.children.length + (nextCursor ? '+' : '') + ' events mention ' + search.text;
          } catch (e) { $('search-status').textContent = e.message; }
        }
        function setSearch(text) {
          search = parseSearch(text.trim());
          $('search-status').textContent = text.trim() && !search ? 'search for letters or digits' : '';
          loadRecent();
        }
        $('f-text').addEventListener('change', () => setSearch($('f-text').value));
        $('f-text').addEventListener('search', () => setSearch($('f-text').value));
        $('more').addEventListener('click', () => loadMatches(true));
        function connect() {
          if (source) source.close();
          source = new EventSource('/api/events/stream');
          source.addEventListener('open', () => { $('stream-status').textContent = 'live'; $('stream-status').className = 'status live'; });
          source.addEventListener('error', () => { $('stream-status').textContent = 'reconnecting'; $('stream-status').className = 'status down'; });
          source.addEventListener('grid_event', (m) => { try { addEvent(JSON.parse(m.data)); } catch (e) {} });
        }
        $('pause').addEventListener('click', () => { paused = !paused; $('pause').textContent = paused ? 'Resume' : 'Pause'; if (!paused) loadRecent(); });
        $('f-type').addEventListener('change', loadRecent);
        $('f-entity').addEventListener('change', loadRecent);

        // Event detail.
        async function showDetail(id) {
          try {
            const r = await api('/api/events/' + encodeURIComponent(id));
            $('detail-title').textContent = r.event.event_type + ' ' + short(r.event.timestamp);
            const t = $('detail-fields');
            t.replaceChildren();
            const add = (k, v) => { const tr = el('tr'); tr.append(el('th', k), el('td', v)); t.append(tr); };
            add('id', r.event.id); add('entities', r.event.entities.join(', '));
            for (const [k, v] of Object.entries(r.event.fields)) add(k, v === null ? '-' : v);
            const ul = $('detail-adjacency');
            ul.replaceChildren(...r.adjacency.map((a) => el('li', (a.direction === 'in' ? a.node + ' -> this' : 'this -> ' + a.node) + ' (' + a.kind + ', edge ' + a.edge_type + ')')));
            $('detail').hidden = false;
          } catch (e) {}
        }
        $('detail-close').addEventListener('click', () => { $('detail').hidden = true; });

        // Alerts, acknowledged in this browser.
        const acked = new Set(JSON.parse(localStorage.getItem('grid-acked') || '[]'));
        const alerted = new Set();
        function addAlert(e) {
          if (acked.has(e.id) || alerted.has(e.id)) return;
          alerted.add(e.id);
          const li = el('li', null, SEVERITY[e.event_type] || 'info');
          li.dataset.id = e.id;
          const what = el('span', e.event_type + ' ' + (e.entities || []).join(', ') + ' ' + details(e), 'what');
          const ack = el('button', 'Ack');
          ack.type = 'button';
          ack.addEventListener('click', () => { acked.add(e.id); localStorage.setItem('grid-acked', JSON.stringify([...acked].slice(-1000))); li.remove(); });
          li.append(el('span', short(e.timestamp)), what, ack);
          const list = $('alerts');
          const items = [...list.children];
          const before = items.find((x) => x.firstChild.textContent < short(e.timestamp));
          list.insertBefore(li, before || null);
          while (list.children.length > 100) list.lastChild.remove();
        }

        // Query box with suggestions as you type.
        function suggest() {
          const q = $('question').value.toLowerCase().trim();
          const hits = EXAMPLES.filter((x) => !q || x.includes(q) || q.split(' ').some((w) => w.length > 2 && x.includes(w))).slice(0, 6);
          $('suggestions').replaceChildren(...hits.map((x) => { const o = document.createElement('option'); o.value = x; return o; }));
          $('suggest-list').replaceChildren(...hits.map((x) => { const s = el('span', x); s.addEventListener('click', () => { $('question').value = x; ask(); }); return s; }));
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

        // Timeline chart, drawn as SVG by the page.
        async function refreshChart() {
          const minutes = Number($('window').value);
          let d;
          try { d = await api('/api/timeline?minutes=' + minutes); } catch (e) { return; }
          const svg = $('chart');
          svg.replaceChildren();
          const w = svg.clientWidth || 800, h = 220, pad = 30;
          svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
          const types = Object.keys(d.series);
          const n = d.buckets;
          const totals = new Array(n).fill(0);
          types.forEach((t) => d.series[t].forEach((c, i) => { totals[i] += c; }));
          const max = Math.max(1, ...totals);
          const bw = (w - pad) / n;
          const stack = new Array(n).fill(0);
          types.forEach((t, ti) => {
            const color = colorOf(t);
            d.series[t].forEach((c, i) => {
              if (!c) return;
              const bh = (h - pad) * c / max;
              stack[i] += bh;
              const r = svgEl('rect', {x: pad + i * bw, y: h - pad - stack[i], width: Math.max(1, bw - 1), height: bh, fill: color});
              r.dataset.type = t;
              const title = svgEl('title', {}); title.textContent = t + ': ' + c; r.append(title);
              svg.append(r);
            });
          });
          const axis = svgEl('text', {x: 2, y: 12, fill: '#9aa5b1', 'font-size': 10}); axis.textContent = String(max); svg.append(axis);
          const start = svgEl('text', {x: pad, y: h - 8, fill: '#9aa5b1', 'font-size': 10}); start.textContent = short(d.start); svg.append(start);
          $('legend').replaceChildren(...types.map((t) => { const s = el('span', t); const i = el('i'); i.style.background = colorOf(t); s.prepend(i); return s; }));
        }
        $('window').addEventListener('change', refreshChart);

        TYPES.forEach((t) => { const o = el('option', t); o.value = t; $('f-type').append(o); });
        suggest();
        const params = new URLSearchParams(location.search);
        if (params.get('text')) { $('f-text').value = params.get('text'); search = parseSearch(params.get('text')); }
        refreshStats(); refreshAgents(); refreshChart(); loadRecent();
        if (params.get('stream') !== 'off') connect();
        if (params.get('q')) { $('question').value = params.get('q'); ask(); }
        setInterval(refreshStats, 2000);
        setInterval(refreshAgents, 5000);
        setInterval(refreshChart, 10000);
        """
}
