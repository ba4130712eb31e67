// Podium cluster page: the registry's nodes and streams, from
// /api/v1/cluster/nodes and /api/v1/cluster/streams, every 2 s.
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
    } catch (e) {
      $('c-state').textContent = 'cannot reach this box';
      $('c-state').className = 'conn down';
    }
  }
  tick();
  setInterval(tick, 2000);
})();
