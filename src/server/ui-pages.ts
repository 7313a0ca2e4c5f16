/**
 * The dashboard's pages: small HTML shells whose script fetches the JSON views (`/ui/api/...`) and renders
 * them with DOM calls (text, never HTML, from data), polling every 2 s while the page is open — Spinnaker's
 * status polling, seen in a browser. Scripts carry the response's CSP nonce.
 */
const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:12px 24px;background:#1d2a3a;color:#fff;display:flex;gap:16px;align-items:center}header a{color:#cfe3ff}
main{padding:16px 24px;max-width:1200px}h1{font-size:18px;margin:0}h2{font-size:16px}
table{border-collapse:collapse;width:100%;background:#fff}td,th{border-bottom:1px solid #ddd;padding:6px 8px;text-align:left;vertical-align:top}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600}
.pass,.promoted,.SUCCEEDED{background:#1b7f3b}.fail,.rolledBack,.FAILED,.failed{background:#c62828}.inconclusive,.INCONCLUSIVE,.awaitingJudgment{background:#b26a00}
.error,.ERROR{background:#6a1b9a}.progressing,.RUNNING,.initialized,.promoting,.rollingBack{background:#1f6fb2}.CANCELED,.unknown{background:#777}
.weights{display:inline-flex;vertical-align:middle;width:180px;height:14px;border-radius:3px;overflow:hidden;background:#eee}.weights .s{background:#1f6fb2}.weights .c{background:#e0701b}
.muted{color:#666;font-size:12px}.timeline{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.step{background:#fff;border:1px solid #ddd;border-top:4px solid #bbb;border-radius:4px;padding:8px 10px;min-width:220px;flex:1}
.step.done{border-top-color:#1b7f3b}.step.current{border-top-color:#1f6fb2;box-shadow:0 0 0 2px #1f6fb244}.step ul{padding-left:16px;margin:4px 0}
#status{font-size:12px;color:#cfe3ff;margin-left:auto}form.login{background:#fff;border:1px solid #ddd;padding:16px;max-width:420px}
input[type=password]{width:100%;padding:6px;margin:8px 0}
`;

const CLIENT_COMMON = `
function h(tag, attrs){ var el = document.createElement(tag); attrs = attrs || {};
  Object.keys(attrs).forEach(function(k){ if (k === 'text') el.textContent = attrs[k]; else if (attrs[k] !== undefined && attrs[k] !== null) el.setAttribute(k, attrs[k]); });
  for (var i = 2; i < arguments.length; i++) { var c = arguments[i]; if (c === null || c === undefined) continue; el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); }
  return el; }
function badge(v){ return h('span', { 'class': 'badge ' + v, text: v }); }
function weights(w){ return h('span', { 'class': 'weights', title: w.stableName + ' ' + w.stable + '% / ' + w.candidateName + ' ' + w.candidate + '%' },
  h('span', { 'class': 's', style: 'width:' + Number(w.stable) + '%' }), h('span', { 'class': 'c', style: 'width:' + Number(w.candidate) + '%' })); }
function when(t){ return t ? new Date(t).toLocaleTimeString() : ''; }
var failures = 0;
function poll(url, render){
  var status = document.getElementById('status');
  function tick(){
    fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } }).then(function(r){
      if (r.status === 401) { location.href = '/ui/login'; return null; }
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    }).then(function(d){ if (!d) return; failures = 0; render(d); status.textContent = 'updated ' + new Date().toLocaleTimeString(); document.body.setAttribute('data-updated', String(Date.now())); })
      .catch(function(e){ failures++; status.textContent = 'update failed (' + e.message + '); retrying'; })
      .then(function(){ setTimeout(tick, Math.min(30000, 2000 * Math.pow(2, Math.min(failures, 4)))); });
  }
  tick();
}
`;

const DASHBOARD = `
poll('/ui/api/releases', function(d){
  var body = document.getElementById('releases'); body.textContent = '';
  if (!d.releases.length) body.appendChild(h('tr', {}, h('td', { colspan: '7', 'class': 'muted', text: 'No release has run a job on this server yet.' })));
  d.releases.forEach(function(r){
    var lv = r.lastVerdict;
    body.appendChild(h('tr', { 'data-release': r.release },
      h('td', {}, h('a', { href: '/ui/releases/' + encodeURIComponent(r.release), text: r.release }), h('div', { 'class': 'muted', text: r.strategy || '' })),
      h('td', { 'data-field': 'phase' }, badge(r.phase), r.held ? ' held' : ''),
      h('td', { 'data-field': 'step', text: r.step + '/' + r.steps.length }),
      h('td', { 'data-field': 'weights' }, weights(r.weights), h('div', { 'class': 'muted', text: r.weights.stableName + ' ' + r.weights.stable + '% / ' + r.weights.candidateName + ' ' + r.weights.candidate + '%' })),
      h('td', { 'data-field': 'verdict' }, lv ? badge(lv.outcome) : '', lv ? h('div', { 'class': 'muted', text: 'step ' + lv.step + ': ' + lv.summary }) : ''),
      h('td', { 'data-field': 'job' }, r.activeJob ? h('span', {}, badge(r.activeJob.status), ' ' + r.activeJob.action + ': ' + r.activeJob.progress) : ''),
      h('td', { 'class': 'muted', text: when(r.updatedAt) })));
  });
});
`;

const RELEASE = `
var name = document.body.getAttribute('data-release');
poll('/ui/api/releases/' + encodeURIComponent(name), function(r){
  var top = document.getElementById('summary'); top.textContent = '';
  top.appendChild(h('p', {}, badge(r.phase), ' step ', h('strong', { 'data-field': 'step', text: r.step + '/' + r.steps.length }), ' ', weights(r.weights),
    ' ' + r.weights.stableName + ' ' + r.weights.stable + '% / ' + r.weights.candidateName + ' ' + r.weights.candidate + '%'));
  if (r.reason) top.appendChild(h('p', { 'class': 'muted', text: r.reason }));
  if (r.stateError) top.appendChild(h('p', { 'class': 'muted', text: 'release state not readable: ' + r.stateError }));
  var tl = document.getElementById('timeline'); tl.textContent = '';
  r.steps.forEach(function(s, i){
    var jobs = r.jobs.filter(function(j){ return j.step === i + 1; });
    var verdicts = r.verdicts.filter(function(v){ return v.step === i + 1; });
    var ul = h('ul');
    verdicts.forEach(function(v){ ul.appendChild(h('li', {}, badge(v.outcome), ' ' + v.summary + ' ', v.reportUrl ? h('a', { href: v.reportUrl, text: 'report' }) : '')); });
    jobs.forEach(function(j){ ul.appendChild(h('li', { 'data-job': j.id }, badge(j.status), ' ' + j.action + ' — ' + j.progress + ' ',
      j.reportUrl ? h('a', { href: j.reportUrl, 'class': 'report', text: 'gate report' }) : '', j.evidenceUrl ? ' · ' : '', j.evidenceUrl ? h('a', { href: j.evidenceUrl, text: 'evidence' }) : '')); });
    tl.appendChild(h('div', { 'class': 'step ' + s.status, 'data-step': String(i + 1), 'data-status': s.status },
      h('strong', { text: 'step ' + (i + 1) + ': ' + s.kind + ' ' + s.weight + '%' }), ' ', h('span', { 'class': 'muted', text: s.status }), ul));
  });
  var jt = document.getElementById('jobs'); jt.textContent = '';
  r.jobs.forEach(function(j){ jt.appendChild(h('tr', {}, h('td', { text: when(j.createdAt) }), h('td', { text: j.action + (j.step ? ' (step ' + j.step + ')' : '') }), h('td', {}, badge(j.status)), h('td', { text: j.progress }),
    h('td', {}, j.reportUrl ? h('a', { href: j.reportUrl, text: 'gate report' }) : '', j.evidenceUrl ? ' · ' : '', j.evidenceUrl ? h('a', { href: j.evidenceUrl, text: 'evidence' }) : ''))); });
});
`;

function shell(title: string, nonce: string, body: string, script: string, attrs = ''): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body${attrs}><header><h1><a href="/ui">clover-cd</a> · ${esc(title)}</h1><span id="status">loading…</span><form method="post" action="/ui/logout"><button>log out</button></form></header><main>${body}</main>
<script nonce="${nonce}">${CLIENT_COMMON}${script}</script></body></html>`;
}

export const dashboardPage = (nonce: string) =>
  shell(
    'releases',
    nonce,
    `<table><thead><tr><th>release</th><th>phase</th><th>step</th><th>weights</th><th>last verdict</th><th>active job</th><th>updated</th></tr></thead><tbody id="releases"></tbody></table>
<p class="muted">Releases with jobs on this server (the state each records with its routes); updated every 2 s.</p>`,
    DASHBOARD,
  );

export const releasePage = (nonce: string, release: string) =>
  shell(
    `release ${release}`,
    nonce,
    `<div id="summary"></div><h2>Steps</h2><div id="timeline" class="timeline"></div><h2>Jobs</h2><table><thead><tr><th>created</th><th>action</th><th>status</th><th>progress</th><th>reports</th></tr></thead><tbody id="jobs"></tbody></table>`,
    RELEASE,
    ` data-release="${esc(release)}"`,
  );

export const loginPage = (
  message?: string,
) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>clover-cd · log in</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body><header><h1>clover-cd dashboard</h1></header><main><form class="login" method="post" action="/ui/login">
<p>Paste the stage server's token, or its read-only token. It is exchanged for a session cookie (12 h); the token itself is not stored in the browser.</p>
${message ? `<p style="color:#c62828">${esc(message)}</p>` : ''}<input type="password" name="token" autocomplete="current-password" required autofocus><button type="submit">log in</button></form></main></body></html>`;
