// Podium login: posts the password as JSON, so that errors show in place;
// without JavaScript the form posts itself.
'use strict';
(function () {
  const form = document.getElementById('login');
  const err = document.getElementById('login-error');
  const show = (msg) => { err.textContent = msg; err.hidden = false; };
  const q = new URLSearchParams(location.search).get('error');
  if (q === 'limited') show('Too many failed attempts: wait a minute.');
  else if (q) show('Wrong password.');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const password = document.getElementById('password').value;
    let res;
    try {
      res = await fetch('/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Podium-UI': '1' },
        body: JSON.stringify({ password }),
        credentials: 'same-origin',
      });
    } catch (e) {
      show('Podium is not answering.');
      return;
    }
    if (res.ok) {
      location.replace('/');
      return;
    }
    if (res.status === 429) show('Too many failed attempts: wait a minute.');
    else if (res.status === 401) show('Wrong password.');
    else show('Login failed (' + res.status + ').');
  });
})();
