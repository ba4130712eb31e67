// Podium cluster page: the registry's nodes, groups and streams, from
// /api/v1/cluster/nodes (with its groups and moves) and
// /api/v1/cluster/streams, every 2 s.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function row(cells) {
    const tr = el('tr');
    for (const c of cells) {
      const td = el('td');
      if (c instanceof Node) td.appendChild(c); else td.textContent = c;
      tr.appendChild(td);
    }
    return tr;
  }
  function mbit(b) { return (b / 1e6).toFixed(1) + ' Mb/s'; }
  async function get(path) {
    const r = await fetch(path, { headers: { 'X-Podium-UI': '1' }, credentials: 'same-origin' });
    if (r.status === 401) { location.href = '/login'; throw new Error('login'); }
    return r.json();
  }
  // groups draws one table per group: its members least loaded first,
  // their load inputs and the classes each owns; then the recent moves.
  function groups(list, moves) {
    $('groups').replaceChildren(...list.map((g) => {
      const owned = {};
      for (const [k, node] of Object.entries(g.owners || {})) (owned[node] = owned[node] || []).push(k);
      const box = el('div', undefined, 'group');
      box.dataset.group = g.name;
      box.appendChild(el('h3', 'group:' + g.name + ' — ' + g.members.length + ' live member' + (g.members.length === 1 ? '' : 's')));
      const t = el('table', undefined, 'inner');
      const head = el('thead');
      head.appendChild(row(['Member', 'RTMP', 'Load', 'Classes', 'Transcodes', 'CPU', 'Owns']));
      t.appendChild(head);
      const body = el('tbody');
      const shown = new Set();
      for (const m of g.members) {
        shown.add(m.node);
        body.appendChild(row([m.node, m.rtmp, m.load.toFixed(2), String(m.streams), String(m.transcodes),
          Math.round(m.cpu * 100) + '%', (owned[m.node] || []).sort().join(', ') || '–']));
      }
      // Owners that are not live members (dead, draining) still hold
      // their claims until they lapse.
      for (const node of Object.keys(owned).sort()) {
        if (!shown.has(node)) body.appendChild(row([node + ' (not live)', '–', '–', '–', '–', '–', owned[node].sort().join(', ')]));
      }
      t.appendChild(body);
      box.appendChild(t);
      return box;
    }));
    $('no-groups').hidden = list.length > 0;
    const mb = document.querySelector('#moves tbody');
    mb.replaceChildren(...moves.slice().reverse().map((m) => row([
      new Date(m.at).toLocaleTimeString(), m.group, m.stream, m.from, m.to, m.reason,
    ])));
    $('no-moves').hidden = moves.length > 0;
  }
  async function tick() {
    try {
      const [n, s] = await Promise.all([get('/api/v1/cluster/nodes'), get('/api/v1/cluster/streams')]);
      const nodes = n.data.nodes || [], streams = s.data.streams || [];
      const reg = n.data.registry || {};
      $('c-nodes').textContent = nodes.length;
      $('c-viewers').textContent = nodes.reduce((a, x) => a + x.viewers, 0);
      $('c-registry').textContent = reg.registry || '–';
      $('c-state').textContent = n.data.stale ? 'registry ' + (reg.state || 'down') + ' — last view' : 'registry ' + (reg.state || 'up');
      $('c-state').className = n.data.stale ? 'conn down' : 'conn live';
      const nb = document.querySelector('#nodes tbody');
      nb.replaceChildren(...nodes.map((x) => row([
        x.id + (x.self ? ' (this box)' : ''), x.line, x.kind, x.state, x.serve ? 'yes' : 'no', String(x.viewers),
        String(x.reserved), x.max_viewers ? String(x.max_viewers) : '–', mbit(x.egress_bps),
        Math.round(x.cpu * 100) + '%', String((x.streams || []).length), (x.heartbeat_age_ms / 1000).toFixed(1) + ' s ago', x.url,
      ])));
      $('no-nodes').hidden = nodes.length > 0;
      const sb = document.querySelector('#cstreams tbody');
      sb.replaceChildren(...streams.map((x) => {
        const a = el('a', 'watch');
        a.href = '/watch/' + encodeURIComponent(x.app) + '/' + encodeURIComponent(x.stream);
        return row([x.vhost + '/' + x.app + '/' + x.stream, String(x.viewers),
          x.nodes.map((o) => o.node + (o.ready ? ' ✓' : '')).join(', '), a]);
      }));
      $('no-cstreams').hidden = streams.length > 0;
      groups(n.data.groups || [], n.data.moves || []);
    } catch (e) {
      $('c-state').textContent = 'cannot reach this box';
      $('c-state').className = 'conn down';
    }
  }
  tick();
  setInterval(tick, 2000);
})();
