// Podium recordings page: GET /api/v1/recordings every few seconds,
// grouped by stream and day; each file with its duration and size, a
// player (MP4 natively, FLV through the vendored mpegts.js) that seeks over
// HTTP Range, a download link and Delete.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  let list = [];
  let filter = '';
  let playing = null; // id of the file in the player
  let flvPlayer = null;

  const pad = (n) => (n < 10 ? '0' : '') + n;
  function dur(sec) {
    sec = Math.max(0, Math.round(sec));
    const h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
    return (h ? h + ':' + pad(m) : m) + ':' + pad(s);
  }
  function bytes(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + u[i];
  }
  function day(ms) { const d = new Date(ms); return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()); }
  function clock(ms) { const d = new Date(ms); return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()); }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function base(f) { return f.split('/').pop(); }

  async function api(method, path) {
    const res = await fetch(path, { method, headers: { 'X-Podium-UI': '1' }, credentials: 'same-origin' });
    if (res.status === 401) { location.replace('/login'); throw new Error('logged out'); }
    return res;
  }

  async function load() {
    try {
      const res = await api('GET', '/api/v1/recordings');
      const body = await res.json();
      if (!res.ok || body.code !== 0) throw new Error(body.error || res.status);
      list = body.recordings;
      $('rec-error').hidden = true;
      render();
    } catch (e) {
      if (e.message === 'logged out') return;
      $('rec-error').textContent = 'Could not load the recordings: ' + e.message;
      $('rec-error').hidden = false;
    }
  }

  function render() {
    $('r-count').textContent = String(list.filter((r) => !r.recording).length);
    $('r-live').textContent = String(list.filter((r) => r.recording).length);
    $('r-size').textContent = bytes(list.reduce((n, r) => n + r.bytes, 0));
    // By stream, then by day, newest first.
    const groups = new Map();
    for (const r of list) {
      const name = (r.vhost === '__defaultVhost__' ? '' : r.vhost + '/') + r.app + '/' + r.stream;
      const key = name + ' · ' + day(r.start_ms);
      if (filter && !key.toLowerCase().includes(filter)) continue;
      if (!groups.has(key)) groups.set(key, { name, day: day(r.start_ms), items: [] });
      groups.get(key).items.push(r);
    }
    const keys = [...groups.keys()].sort((a, b) => {
      const ga = groups.get(a), gb = groups.get(b);
      return ga.name === gb.name ? (ga.day < gb.day ? 1 : -1) : (ga.name < gb.name ? -1 : 1);
    });
    const root = $('rec-groups');
    root.textContent = '';
    $('no-recordings').hidden = keys.length > 0;
    for (const k of keys) {
      const g = groups.get(k);
      const sec = el('section', 'card rec-group');
      sec.dataset.stream = g.name;
      sec.dataset.day = g.day;
      const h = el('h3');
      h.appendChild(el('span', 'rec-stream', g.name));
      h.appendChild(el('span', 'muted', ' · ' + g.day + ' · ' + g.items.length + (g.items.length === 1 ? ' file' : ' files')));
      sec.appendChild(h);
      const table = el('table', 'inner');
      const head = el('tr');
      ['Start', 'Duration', 'Size', 'File', ''].forEach((c) => head.appendChild(el('th', '', c)));
      const thead = el('thead');
      thead.appendChild(head);
      table.appendChild(thead);
      const tb = el('tbody');
      g.items.sort((a, b) => b.start_ms - a.start_ms);
      for (const r of g.items) {
        const tr = el('tr', r.recording ? 'rec-live' : '');
        tr.dataset.id = r.id;
        tr.appendChild(el('td', '', clock(r.start_ms)));
        tr.appendChild(el('td', 'rec-duration', dur(r.duration)));
        tr.appendChild(el('td', 'rec-size', bytes(r.bytes)));
        tr.appendChild(el('td', 'muted', base(r.file)));
        const act = el('td', 'actions');
        if (r.recording) {
          act.appendChild(el('span', 'chip rec-mark', '● recording'));
        } else {
          const play = el('button', 'play-btn', 'Play');
          play.type = 'button';
          play.addEventListener('click', () => openPlayer(r));
          act.appendChild(play);
          const dl = el('a', 'download-link', 'Download');
          dl.href = r.url + '?download=1';
          dl.setAttribute('download', base(r.file));
          act.appendChild(dl);
          const del = el('button', 'delete-btn danger', 'Delete');
          del.type = 'button';
          del.addEventListener('click', () => remove(r));
          act.appendChild(del);
        }
        tr.appendChild(act);
        tb.appendChild(tr);
      }
      table.appendChild(tb);
      sec.appendChild(table);
      root.appendChild(sec);
    }
  }

  function loadMpegts() {
    if (window.mpegts) return Promise.resolve(window.mpegts);
    return new Promise((resolve, reject) => {
      const sc = document.createElement('script');
      sc.src = '/assets/vendor/mpegts.js/mpegts.js';
      sc.onload = () => resolve(window.mpegts);
      sc.onerror = () => reject(new Error('mpegts.js did not load'));
      document.head.appendChild(sc);
    });
  }

  function closePlayer() {
    const v = $('rec-player');
    if (flvPlayer) { flvPlayer.destroy(); flvPlayer = null; }
    v.removeAttribute('src');
    v.load();
    $('rec-preview').hidden = true;
    playing = null;
  }

  async function openPlayer(r) {
    closePlayer();
    playing = r.id;
    $('rec-preview').hidden = false;
    $('rec-name').textContent = r.app + '/' + r.stream + ' ' + day(r.start_ms) + ' ' + clock(r.start_ms);
    $('rec-msg').textContent = base(r.file) + ' · ' + dur(r.duration) + ' · ' + bytes(r.bytes);
    const v = $('rec-player');
    if (r.file.endsWith('.flv')) {
      try {
        const mpegts = await loadMpegts();
        flvPlayer = mpegts.createPlayer({ type: 'flv', url: r.url, isLive: false }, { withCredentials: true, headers: { 'X-Podium-UI': '1' } });
        flvPlayer.attachMediaElement(v);
        flvPlayer.load();
      } catch (e) {
        $('rec-msg').textContent = 'FLV player: ' + e.message;
        return;
      }
    } else {
      v.src = r.url;
    }
    v.play().catch(() => {});
  }

  async function remove(r) {
    if (!confirm('Delete ' + base(r.file) + '? The file is removed from the disk.')) return;
    const res = await api('DELETE', '/api/v1/recordings/' + encodeURIComponent(r.id));
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      alert('Delete failed: ' + (body.error || res.status));
    }
    if (playing === r.id) closePlayer();
    load();
  }

  $('rec-filter').addEventListener('input', (e) => { filter = e.target.value.trim().toLowerCase(); render(); });
  $('rec-close').addEventListener('click', closePlayer);
  load();
  setInterval(load, 5000);
})();
