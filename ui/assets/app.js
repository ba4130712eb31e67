// Podium dashboard: one Server-Sent Events stream (/api/v1/events) brings
// a snapshot every second and at every publish/unpublish; rows are keyed
// by stream id and only changed cells are touched, so 200 streams stay
// cheap to redraw and an open preview or details row survives updates.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const rowsEl = $('stream-rows');
  const rows = new Map(); // stream id -> row state
  const open = new Set(); // stream ids with details shown
  let last = null; // last snapshot
  let filter = '';

  // ---- formatting ----
  const pad = (n) => (n < 10 ? '0' : '') + n;
  function dur(sec) {
    sec = Math.max(0, Math.floor(sec));
    const h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
    return (h ? h + ':' + pad(m) : m) + ':' + pad(s);
  }
  function kbps(k) {
    if (!k) return '0';
    return k >= 1000 ? (k / 1000).toFixed(2) + ' Mb/s' : Math.round(k) + ' kb/s';
  }
  function bits(b) { return kbps(b / 1000); }
  function bytes(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + u[i];
  }
  function codecs(v, a) {
    const p = [];
    if (v) p.push(v.codec);
    if (a) p.push(a.codec);
    return p.join('+') || '–';
  }
  function audioDesc(a) {
    return a ? a.codec + ' ' + (a.sample_rate ? a.sample_rate / 1000 + ' kHz' : '') + (a.channel ? ' ' + (a.channel === 1 ? 'mono' : a.channel === 2 ? 'stereo' : a.channel + 'ch') : '') : '';
  }

  // destHost shortens rtmp://host:port/app/stream?... to host:port.
  function destHost(d) {
    const m = /^[a-z]+:\/\/(?:[^@/]*@)?([^/?]+)/i.exec(d);
    return m ? m[1] : d;
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  // set changes a cell only when its text changed.
  function set(r, i, text, cls) {
    if (r.vals[i] !== text) { r.vals[i] = text; r.cells[i].textContent = text; }
    if (cls !== undefined && r.cls[i] !== cls) { r.cls[i] = cls; r.cells[i].className = cls; }
  }

  // ---- stream rows ----
  const COLS = 11;
  function makeRow(s) {
    const tr = el('tr');
    tr.dataset.id = s.id;
    tr.dataset.stream = s.path;
    const r = { tr, cells: [], vals: [], cls: [], detail: null, fwdKey: '' };
    for (let i = 0; i < COLS - 1; i++) { const td = el('td'); r.cells.push(td); tr.appendChild(td); }
    r.cells[0].className = 'name';
    r.cells[9].className = 'fwd';
    const act = el('td', 'actions');
    const details = el('button', 'details-btn', 'Details');
    details.type = 'button';
    details.addEventListener('click', () => { open.has(s.id) ? open.delete(s.id) : open.add(s.id); render(); });
    act.appendChild(details);
    r.preview = el('button', 'preview-btn', 'Preview');
    r.preview.type = 'button';
    r.preview.hidden = true;
    r.preview.addEventListener('click', () => preview(r.stream));
    act.appendChild(r.preview);
    r.kick = el('button', 'kick-btn danger', 'Kick');
    r.kick.type = 'button';
    r.kick.addEventListener('click', () => kick(r.stream));
    act.appendChild(r.kick);
    tr.appendChild(act);
    return r;
  }

  function updateRow(r, s) {
    r.stream = s;
    set(r, 0, s.path + (s.recording ? ' ● rec' : ''), s.recording ? 'name recording' : 'name');
    let pub = s.source ? 'transcode of ' + s.source : (s.publish.protocol + ' ' + (s.publish.ip || s.publish.remote));
    // A stream an edge pulls: its origin and the state of the link.
    if (s.upstream) pub = 'pulled from ' + s.upstream.origin + ' (' + s.upstream.state +
      (s.upstream.switches ? ', ' + s.upstream.switches + ' switches' : '') + ')';
    set(r, 1, pub, s.upstream ? (s.upstream.state === 'playing' ? 'ok' : 'warn') : '');
    set(r, 2, dur(s.uptime));
    let cod = codecs(s.video, s.audio);
    if (s.output) cod += ' → ' + (s.output.video || s.output.audio ? codecs(s.output.video, s.output.audio) : '…');
    set(r, 3, cod);
    set(r, 4, s.video && s.video.width ? s.video.width + '×' + s.video.height : '–');
    set(r, 5, s.video ? String(Math.round(s.fps)) : '–');
    set(r, 6, bits(s.bitrate));
    set(r, 7, String(s.viewers));
    const t = s.transcode;
    if (t) {
      let txt = (t.encoder || '…') + ' ' + (t.encoder === 'copy' ? '' : t.hardware ? 'GPU' : 'CPU') + ' ' + t.speed.toFixed(2) + '×';
      if (t.errors) txt += ' · ' + t.errors + ' errors';
      if (t.state !== 'running') txt += ' · ' + t.state;
      set(r, 8, txt.replace(/\s+/g, ' '), t.state === 'running' && !t.errors ? 'ok' : t.state === 'failed' ? 'bad' : 'warn');
    } else {
      set(r, 8, '–', '');
    }
    // Forwards: one chip per destination with its state.
    const key = s.forwards.map((f) => f.destination + '|' + f.state + '|' + f.reconnects).join(',');
    if (key !== r.fwdKey) {
      r.fwdKey = key;
      const td = r.cells[9];
      td.textContent = '';
      if (!s.forwards.length) td.textContent = '–';
      for (const f of s.forwards) {
        const chip = el('span', 'chip state-' + f.state, destHost(f.destination) + ' ' + f.state + (f.reconnects ? ' ↻' + f.reconnects : ''));
        chip.dataset.destination = f.destination;
        chip.dataset.state = f.state;
        chip.title = f.destination + (f.last_error ? '\n' + f.last_error : '');
        td.appendChild(chip);
      }
    }
    // Offered once the first segment is cut: before, the playlist is a 404.
    r.preview.hidden = !s.hls || !s.hls.url || !s.hls.segments;
    r.kick.hidden = !s.publish.kickable;
    r.tr.classList.toggle('selected', open.has(s.id));
  }

  function detailRow(s) {
    const tr = el('tr', 'detail');
    const td = el('td');
    td.colSpan = COLS;
    tr.appendChild(td);
    fillDetail(td, s);
    return tr;
  }

  function kv(dl, k, v) { dl.appendChild(el('dt', '', k)); dl.appendChild(el('dd', '', v)); }
  function table(head, body) {
    const t = el('table', 'inner');
    const tr = el('tr');
    head.forEach((h) => tr.appendChild(el('th', '', h)));
    const th = el('thead'); th.appendChild(tr); t.appendChild(th);
    const tb = el('tbody');
    body.forEach((row) => { const r = el('tr'); row.forEach((c) => r.appendChild(el('td', '', c))); tb.appendChild(r); });
    t.appendChild(tb);
    return t;
  }

  function fillDetail(td, s) {
    td.textContent = '';
    const box = el('div', 'detail-grid');
    const a = el('div');
    a.appendChild(el('h3', '', 'Stream'));
    const dl = el('dl');
    kv(dl, 'id', s.id);
    kv(dl, 'publisher', s.publish.protocol + ' ' + s.publish.remote + (s.publish.params ? ' ?' + s.publish.params : ''));
    kv(dl, 'input', codecs(s.video, s.audio) + (s.video && s.video.width ? ' ' + s.video.width + '×' + s.video.height : '') + ' ' + audioDesc(s.audio));
    if (s.output) kv(dl, 'output', s.output.stream + ': ' + codecs(s.output.video, s.output.audio) + ' ' + audioDesc(s.output.audio));
    kv(dl, 'received', bytes(s.recv_bytes) + ' · ' + kbps(s.kbps.recv_30s));
    kv(dl, 'sent', bytes(s.send_bytes) + ' · ' + kbps(s.kbps.send_30s));
    kv(dl, 'dropped', String(s.dropped));
    if (s.hls) kv(dl, 'HLS', s.hls.url + (s.hls.segments ? ' · ' + s.hls.segments + ' segments' : ''));
    if (s.upstream) {
      const u = s.upstream;
      kv(dl, 'upstream', u.origin + ' · ' + u.state + ' since ' + new Date(u.since).toLocaleTimeString() +
        ' · ' + u.switches + ' switches' + (u.last_error ? ' · last error: ' + u.last_error : ''));
    }
    a.appendChild(dl);
    box.appendChild(a);
    if (s.transcode) {
      const t = s.transcode;
      const b = el('div');
      b.appendChild(el('h3', '', 'Transcode'));
      const d = el('dl');
      kv(d, 'state', t.state + (t.restarts ? ' · ' + t.restarts + ' restarts' : ''));
      kv(d, 'encoder', t.encoder + ' (' + (t.encoder === 'copy' ? 'copy' : t.hardware ? 'hardware' : 'CPU') + ')');
      if (t.fallbacks && t.fallbacks.length) kv(d, 'fell back from', t.fallbacks.join('; '));
      kv(d, 'video', t.input_video + ' → ' + t.output_video);
      kv(d, 'audio', t.input_audio + ' → ' + t.output_audio);
      kv(d, 'speed', t.speed.toFixed(2) + '× real time');
      kv(d, 'frames', t.frames_decoded + ' decoded, ' + t.frames_encoded + ' encoded');
      kv(d, 'errors', String(t.errors));
      if (t.last_error) kv(d, 'last error', t.last_error);
      b.appendChild(d);
      box.appendChild(b);
    }
    td.appendChild(box);
    if (s.forwards.length) {
      td.appendChild(el('h3', '', 'Forwards'));
      td.appendChild(table(['Destination', 'State', 'For', 'Bitrate', 'Sent', 'Reconnects', 'Dropped', 'Last error'],
        s.forwards.map((f) => [f.destination, f.state, dur(f.state_seconds), bits(f.bitrate), bytes(f.bytes), String(f.reconnects), String(f.dropped), f.last_error || '–'])));
    }
    if (s.readers.length) {
      td.appendChild(el('h3', '', 'Readers'));
      td.appendChild(table(['Protocol', 'Remote', 'Alive', 'Bitrate', 'Sent', 'Queued', 'Dropped'],
        s.readers.map((x) => [x.protocol, x.remote, dur(x.alive), bits(x.bitrate), bytes(x.send_bytes), String(x.queued), String(x.dropped)])));
    }
  }

  function render() {
    if (!last) return;
    const seen = new Set();
    let prev = null;
    for (const s of last.streams) {
      if (filter && s.path.toLowerCase().indexOf(filter) < 0) continue;
      let r = rows.get(s.id);
      if (!r) { r = makeRow(s); rows.set(s.id, r); }
      updateRow(r, s);
      seen.add(s.id);
      const want = prev ? prev.nextSibling : rowsEl.firstChild;
      if (r.tr !== want) rowsEl.insertBefore(r.tr, want);
      prev = r.tr;
      if (open.has(s.id)) {
        if (!r.detail) r.detail = detailRow(s); else fillDetail(r.detail.firstChild, s);
        if (prev.nextSibling !== r.detail) rowsEl.insertBefore(r.detail, prev.nextSibling);
        prev = r.detail;
      } else if (r.detail) {
        r.detail.remove();
        r.detail = null;
      }
    }
    for (const [id, r] of rows) {
      if (!seen.has(id)) {
        r.tr.remove();
        if (r.detail) r.detail.remove();
        rows.delete(id);
      }
    }
    $('no-streams').hidden = last.streams.length > 0;
  }

  function renderSummary(sum) {
    const p = sum.podium, h = sum.system, me = sum.self;
    $('version').textContent = me.version;
    $('t-streams').textContent = p.streams;
    $('t-viewers').textContent = p.viewers;
    $('t-in').textContent = kbps(p.recv_kbps);
    $('t-out').textContent = kbps(p.send_kbps);
    const f = p.forwards, n = Object.values(f).reduce((a, b) => a + b, 0);
    $('t-fwd').textContent = n ? (f.forwarding || 0) + '/' + n + ' up' : '–';
    $('h-cpu').textContent = h.cpu_percent.toFixed(1) + ' % of ' + h.cpus + ' CPUs';
    $('h-load').textContent = h.load_1m.toFixed(2) + ' ' + h.load_5m.toFixed(2) + ' ' + h.load_15m.toFixed(2);
    $('h-mem').textContent = bytes(h.mem_ram_kbyte * 1024) + ' of ' + bytes(h.mem_ram_total_kbyte * 1024) + ' (' + h.mem_ram_percent.toFixed(1) + ' %)';
    $('h-net').textContent = '↓ ' + kbps(h.net_recv_kbps) + ' ↑ ' + kbps(h.net_send_kbps);
    $('h-self').textContent = me.cpu_percent.toFixed(1) + ' % CPU · ' + bytes(me.mem_kbyte * 1024) + ' · up ' + dur(me.uptime);
  }

  function renderSources(list) {
    $('sources-panel').hidden = !list.length;
    const tb = $('sources').tBodies[0];
    tb.textContent = '';
    for (const s of list) {
      const tr = el('tr');
      [s.url, s.stream, s.state, String(s.reconnects), bytes(s.bytes), s.last_error || '–'].forEach((c) => tr.appendChild(el('td', '', c)));
      tb.appendChild(tr);
    }
  }

  // ---- actions ----
  async function api(method, path) {
    const res = await fetch(path, { method, headers: { 'X-Podium-UI': '1' }, credentials: 'same-origin' });
    if (res.status === 401) { location.replace('/login'); throw new Error('logged out'); }
    return res;
  }

  async function kick(s) {
    if (!confirm('Disconnect the publisher of ' + s.path + '?')) return;
    const res = await api('DELETE', '/api/v1/streams/' + encodeURIComponent(s.id));
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      alert('Kick failed: ' + (body.error || res.status));
    }
  }

  let hls = null;
  function loadHls() {
    if (window.Hls) return Promise.resolve(window.Hls);
    return new Promise((resolve, reject) => {
      const sc = document.createElement('script');
      sc.src = '/assets/vendor/hls.js/hls.light.min.js';
      sc.onload = () => resolve(window.Hls);
      sc.onerror = reject;
      document.head.appendChild(sc);
    });
  }
  async function preview(s) {
    const video = $('player');
    $('preview').hidden = false;
    $('preview-name').textContent = s.path;
    $('preview-msg').textContent = 'Loading ' + s.hls.url + '…';
    stopPreview(false);
    const Hls = await loadHls().catch(() => null);
    if (Hls && Hls.isSupported()) {
      const player = new Hls({ liveSyncDurationCount: 3 });
      hls = player;
      let waits = 0;
      player.on(Hls.Events.MANIFEST_PARSED, () => { $('preview-msg').textContent = s.hls.url; video.play().catch(() => {}); });
      player.on(Hls.Events.ERROR, (_, d) => {
        if (!d.fatal) return;
        // A stream that has just started has no playlist yet (404 until
        // its first segment is cut): wait for it rather than give up.
        if (d.details === Hls.ErrorDetails.MANIFEST_LOAD_ERROR && waits < 30) {
          waits++;
          $('preview-msg').textContent = 'Waiting for the first segment of ' + s.hls.url + '…';
          setTimeout(() => { if (hls === player) player.loadSource(s.hls.url); }, 1000);
          return;
        }
        $('preview-msg').textContent = 'Playback error: ' + d.details;
      });
      player.loadSource(s.hls.url);
      player.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = s.hls.url;
      $('preview-msg').textContent = s.hls.url;
    } else {
      $('preview-msg').textContent = 'This browser cannot play HLS.';
    }
    $('preview').scrollIntoView({ block: 'nearest' });
  }
  function stopPreview(hide) {
    if (hls) { hls.destroy(); hls = null; }
    const v = $('player');
    v.removeAttribute('src');
    v.load();
    if (hide) $('preview').hidden = true;
  }
  $('preview-close').addEventListener('click', () => stopPreview(true));

  $('filter').addEventListener('input', (e) => { filter = e.target.value.trim().toLowerCase(); render(); });

  // ---- data ----
  async function loadHW() {
    try {
      const res = await api('GET', '/api/v1/hw');
      const body = await res.json();
      const tb = $('hw').tBodies[0];
      tb.textContent = '';
      for (const h of body.hw) {
        const tr = el('tr', h.usable ? 'ok' : 'muted');
        [h.backend, h.encoder, h.device || '–', h.usable ? 'yes' : 'no', h.reason || '–'].forEach((c) => tr.appendChild(el('td', '', c)));
        tb.appendChild(tr);
      }
    } catch (e) { /* shown as an empty panel */ }
  }

  let es = null;
  function connect() {
    es = new EventSource('/api/v1/events');
    es.addEventListener('snapshot', (ev) => {
      const t0 = performance.now();
      last = JSON.parse(ev.data);
      $('conn').textContent = 'live';
      $('conn').className = 'conn live';
      renderSummary(last.summary);
      render();
      renderSources(last.sources || []);
      // For the browser test's measurements.
      window.podiumUpdates = (window.podiumUpdates || 0) + 1;
      window.podiumRenderMs = performance.now() - t0;
    });
    es.onerror = async () => {
      $('conn').textContent = 'reconnecting…';
      $('conn').className = 'conn down';
      // A 401 ends the stream for good: back to the login page.
      try { await api('GET', '/api/v1/versions'); } catch (e) { /* redirected, or Podium is down: EventSource retries */ }
    };
  }
  connect();
  loadHW();
})();
