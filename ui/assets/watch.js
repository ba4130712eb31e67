// The students' page: /watch/APP/STREAM[?proto=hls|flv][&line=][&vhost=][&token=].
// It asks this box's allocator for a line, plays the URL it answers (hls.js,
// or mpegts.js for HTTP-FLV; Safari's own HLS where MediaSource is missing),
// and moves to another line on "Switch line" or after a stall of 8 s.
// window.__watch shows its state (for tests and for support).
(function () {
  'use strict';
  var STALL_MS = 8000;
  var parts = location.pathname.split('/');
  var app = decodeURIComponent(parts[2] || '');
  var stream = decodeURIComponent(parts[3] || '');
  var q = new URLSearchParams(location.search);
  var proto = q.get('proto') === 'flv' ? 'flv' : 'hls';
  var zh = /^zh\b/i.test(navigator.language || '');
  var T = zh ? {
    sw: '更换线路', line: '线路：', connecting: '正在连接…', waiting: '直播尚未开始，稍候自动播放…',
    stalled: '播放卡顿，正在更换线路…', switching: '正在更换线路…', only: '只有这一条线路。', failed: '暂时无法播放，正在重试…',
    busy: '人数已满，正在重试…', tap: '点击画面开始播放',
  } : {
    sw: 'Switch line', line: 'Line: ', connecting: 'Connecting…', waiting: 'The class has not started yet; it will play by itself…',
    stalled: 'Playback stalled: switching line…', switching: 'Switching line…', only: 'This is the only line.', failed: 'Cannot play right now; retrying…',
    busy: 'Every line is full; retrying…', tap: 'Tap the video to start',
  };
  if (zh) document.documentElement.lang = 'zh';
  var video = document.getElementById('video');
  var btn = document.getElementById('switch');
  var lineEl = document.getElementById('line');
  var msg = document.getElementById('msg');
  btn.textContent = T.sw;
  document.getElementById('title').textContent = app + ' / ' + stream;
  document.title = stream;

  var st = window.__watch = { app: app, stream: stream, proto: proto, session: null, node: null, line: null, url: null, switches: 0, stalls: 0, lines: [] };
  var player = null;
  var lastTime = -1;
  var lastMove = 0;
  var busy = false;

  function say(s) { msg.textContent = s || ''; }

  function api(path, opts) {
    return fetch(path, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { j.status = r.status; return j; });
    });
  }

  function playURL(a) {
    var u = a.url;
    return u + (u.indexOf('?') >= 0 ? '&' : '?') + 'ps=' + encodeURIComponent(a.session);
  }

  function stop() {
    if (!player) return;
    try { player.destroy(); } catch (e) { /* already gone */ }
    player = null;
  }

  function loadScript(src) {
    return new Promise(function (ok, fail) {
      var s = document.createElement('script');
      s.src = src; s.onload = ok; s.onerror = fail;
      document.head.appendChild(s);
    });
  }

  function start(a) {
    stop();
    st.session = a.session; st.node = a.node; st.line = a.line; st.url = a.url;
    st.lines.push(a.line);
    lineEl.textContent = T.line + a.line;
    lastTime = -1; lastMove = performance.now();
    var url = playURL(a);
    if (proto === 'flv') {
      var go = function () {
        var p = mpegts.createPlayer({ type: 'flv', isLive: true, url: url }, { enableStashBuffer: false, liveBufferLatencyChasing: true });
        p.on(mpegts.Events.ERROR, function () { failed(); });
        p.attachMediaElement(video);
        p.load();
        player = { destroy: function () { p.pause(); p.unload(); p.detachMediaElement(); p.destroy(); } };
        kick();
      };
      if (window.mpegts) go(); else loadScript('/assets/vendor/mpegts.js/mpegts.js').then(go, failed);
      return;
    }
    if (window.Hls && Hls.isSupported()) {
      var h = new Hls({ liveSyncDurationCount: 3, manifestLoadingMaxRetry: 2, levelLoadingMaxRetry: 2, fragLoadingMaxRetry: 2 });
      h.on(Hls.Events.ERROR, function (_, d) { if (d.fatal) failed(); });
      h.loadSource(url);
      h.attachMedia(video);
      player = h;
      kick();
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = url; // iOS Safari plays HLS itself
      player = { destroy: function () { video.removeAttribute('src'); video.load(); } };
      kick();
    }
  }

  function kick() {
    var p = video.play();
    if (p && p.catch) p.catch(function () { say(T.tap); });
  }

  function failed() {
    if (busy) return;
    setTimeout(function () { change('error'); }, 1000);
  }

  function allocate() {
    var p = new URLSearchParams({ app: app, stream: stream, proto: proto });
    ['vhost', 'line', 'token'].forEach(function (k) { if (q.get(k)) p.set(k, q.get(k)); });
    say(T.connecting);
    return api('/api/v1/play?' + p.toString()).then(function (j) {
      if (j.code === 0 && j.data) { say(''); start(j.data); return; }
      say(j.status === 404 ? T.waiting : j.status === 503 ? T.busy : T.failed);
      setTimeout(allocate, 3000);
    }, function () { say(T.failed); setTimeout(allocate, 3000); });
  }

  function change(reason) {
    if (busy) return;
    if (!st.session) { allocate(); return; }
    busy = true; btn.disabled = true;
    say(reason === 'stall' ? T.stalled : T.switching);
    api('/api/v1/play/switch', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ session: st.session, reason: reason }),
    }).then(function (j) {
      if (j.code === 0 && j.data) {
        st.switches++;
        say(j.data.only_line ? T.only : '');
        start(j.data);
      } else if (j.status === 404) {
        st.session = null; // expired: a new allocation
        allocate();
      } else {
        say(T.failed);
      }
    }, function () { say(T.failed); }).then(function () { busy = false; btn.disabled = false; });
  }

  btn.addEventListener('click', function () { change('manual'); });
  video.addEventListener('click', function () { if (video.paused) kick(); });

  // A stall: the video has not moved for 8 s while it should play.
  setInterval(function () {
    if (!st.session || busy) return;
    var now = performance.now();
    if (video.currentTime !== lastTime) { lastTime = video.currentTime; lastMove = now; return; }
    if (video.paused && lastTime > 0) { lastMove = now; return; } // paused by the student
    if (now - lastMove > STALL_MS) { st.stalls++; lastMove = now; change('stall'); }
  }, 500);

  allocate();
})();
