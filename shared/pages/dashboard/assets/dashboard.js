// The DPO dashboard: signs in with an audit:read key kept in sessionStorage (this tab only), then draws
// the audit summary, erasure deadlines, exports and verification from the audit API. No framework, no
// inline code (the page's CSP allows scripts from this origin only).
(() => {
  const KEY = 'consent-gate.audit-key';
  const M = JSON.parse(document.getElementById('messages').textContent);
  const lang = document.documentElement.lang || 'en';
  const $ = (id) => document.getElementById(id);
  const fmt = (text, vars = {}) => text.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
  const number = new Intl.NumberFormat(lang);
  const percent = new Intl.NumberFormat(lang, { style: 'percent', maximumFractionDigits: 1 });
  const dateTime = new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });
  const charts = {};

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  const key = () => sessionStorage.getItem(KEY);

  async function call(path) {
    const res = await fetch(path, { headers: { authorization: `Bearer ${key()}` }, cache: 'no-store' });
    if (!res.ok) {
      let detail = res.statusText;
      try {
        detail = (await res.json()).detail || detail;
      } catch {}
      throw new ApiError(res.status, detail);
    }
    return res;
  }

  function explain(error) {
    if (error.status === 401) return M.badKey;
    if (error.status === 403) return M.missingScope;
    if (error.status === 503) return M.storeDown;
    return fmt(M.error, { detail: error.message });
  }

  function say(text, id = 'status') {
    $(id).textContent = text;
  }

  /** Any 401/403 after sign-in ends the session: the key was revoked or lacks the scope. */
  function fail(error) {
    if (error.status === 401 || error.status === 403) {
      signOut();
      say(explain(error), 'signin-error');
      return;
    }
    say(explain(error));
  }

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function row(cells, className) {
    const tr = document.createElement('tr');
    if (className) tr.className = className;
    for (const c of cells) tr.append(c);
    return tr;
  }

  // -------------------------------------------------------------------------------------------- range

  const iso = (d) => d.toISOString().slice(0, 10);

  function defaultRange() {
    const to = new Date();
    to.setUTCDate(to.getUTCDate() + 1);
    const from = new Date(to);
    from.setUTCDate(from.getUTCDate() - 30);
    $('from').value = iso(from);
    $('to').value = iso(to);
  }

  function range() {
    const from = $('from').value;
    const to = $('to').value;
    const days = (Date.parse(to) - Date.parse(from)) / 86400000;
    if (!from || !to || !(days > 0) || days > 366) return undefined;
    return { from, to };
  }

  const qs = (r, extra = {}) => new URLSearchParams({ ...r, ...extra }).toString();

  // -------------------------------------------------------------------------------------------- figures

  const count = (day, type) => day.types[type] || 0;

  function drawDaily(summary) {
    const days = summary.days;
    const series = [
      { label: M.consents, type: 'consent.granted', color: '#1d6b3a' },
      { label: M.withdrawals, type: 'consent.withdrawn', color: '#b45309' },
      { label: M.erasures, type: 'erasure.requested', color: '#9f1c1c' },
      { label: M.erasuresDone, type: 'erasure.completed', color: '#4b5563' },
    ];
    charts.daily?.destroy();
    charts.daily = new Chart($('chart-daily'), {
      type: 'bar',
      data: {
        labels: days.map((d) => d.day),
        datasets: series.map((s) => ({
          label: s.label,
          data: days.map((d) => count(d, s.type)),
          backgroundColor: s.color,
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
    const body = $('daily-table').tBodies[0];
    body.replaceChildren(
      ...days.map((d) => row([cell(d.day), ...series.map((s) => cell(number.format(count(d, s.type)), 'num'))])),
    );
  }

  function drawLevels(contacts) {
    const levels = contacts?.blockLevels;
    const body = $('levels-table').tBodies[0];
    charts.levels?.destroy();
    charts.levels = undefined;
    if (!levels) {
      $('chart-levels').hidden = true;
      body.replaceChildren(row([cell(M.levelsUnavailable), cell(''), cell('')]));
      return;
    }
    $('chart-levels').hidden = false;
    const names = { none: M.levelNone, suspected: M.levelSuspected, likely: M.levelLikely };
    const order = ['none', 'suspected', 'likely'];
    charts.levels = new Chart($('chart-levels'), {
      type: 'doughnut',
      data: {
        labels: order.map((l) => names[l]),
        datasets: [{ data: order.map((l) => levels.counts[l]), backgroundColor: ['#1d6b3a', '#b45309', '#9f1c1c'] }],
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false },
    });
    body.replaceChildren(
      ...order.map((l) =>
        row([
          cell(names[l]),
          cell(number.format(levels.counts[l]), 'num'),
          cell(percent.format(levels.share[l]), 'num'),
        ]),
      ),
    );
  }

  function drawErasures(requests) {
    const pending = requests.filter((r) => r.status !== 'completed');
    const status = { received: M.statusReceived, overdue: M.statusOverdue, completed: M.statusCompleted };
    $('erasure-table').tBodies[0].replaceChildren(
      ...pending.map((r) =>
        row(
          [
            cell(r.requestId),
            cell(dateTime.format(new Date(r.receivedAt))),
            cell(dateTime.format(new Date(r.dueBy))),
            cell(number.format(r.daysLeft), 'num'),
            cell(status[r.status] || r.status),
          ],
          r.status === 'overdue' ? 'overdue' : undefined,
        ),
      ),
    );
    $('erasure-empty').hidden = pending.length > 0;
  }

  // -------------------------------------------------------------------------------------------- the log

  const relative = new Intl.RelativeTimeFormat(lang, { numeric: 'auto' });
  const UNITS = [
    ['day', 86400000],
    ['hour', 3600000],
    ['minute', 60000],
    ['second', 1000],
  ];

  function ago(iso) {
    const ms = Date.parse(iso) - Date.now();
    for (const [unit, size] of UNITS) {
      if (Math.abs(ms) >= size || unit === 'second') return relative.format(Math.round(ms / size), unit);
    }
    return '';
  }

  /** The last verification's outcome, kept in this browser (no key, no subject: counts and a time). */
  const VERIFIED = 'consent-gate.last-verification';

  function drawVerified() {
    let last;
    try {
      last = JSON.parse(localStorage.getItem(VERIFIED) || 'null');
    } catch {
      last = null;
    }
    const out = $('log-verified');
    out.className = last ? (last.valid ? 'ok' : 'broken') : '';
    if (!last) out.textContent = M.logNotVerified;
    else {
      const time = `${ago(last.at)} (${last.from} – ${last.to})`;
      out.textContent = last.valid
        ? fmt(M.logVerifiedOk, { time })
        : fmt(M.logVerifiedBroken, { count: number.format(last.breaks), time });
    }
  }

  async function loadLog() {
    drawVerified();
    try {
      // The tree's size first (always answered): a log with nothing sealed has no checkpoint to ask for.
      const { treeSize } = await (await call('/v1/log/leaves?start=0&end=0')).json();
      if (!treeSize) {
        $('log-size').textContent = '0';
        $('log-age').textContent = M.logNone;
        return;
      }
      const res = await fetch('/v1/log/checkpoint', {
        headers: { authorization: `Bearer ${key()}`, accept: 'application/json' },
        cache: 'no-store',
      });
      if (!res.ok) throw new ApiError(res.status, res.statusText);
      const cp = await res.json();
      $('log-size').textContent = number.format(cp.treeSize);
      $('log-age').textContent = fmt(M.logSigned, {
        age: ago(cp.timestamp),
        time: dateTime.format(new Date(cp.timestamp)),
      });
    } catch (error) {
      $('log-age').textContent = explain(error);
    }
  }

  async function load() {
    const r = range();
    if (!r) {
      say(M.badRange);
      return;
    }
    say(M.loading);
    try {
      const [summary, erasures] = await Promise.all([
        call(`/v1/audit/summary?${qs(r)}`).then((res) => res.json()),
        call('/v1/audit/erasures?status=pending').then((res) => res.json()),
      ]);
      const types = summary.types;
      $('kpi-total').textContent = number.format(summary.total);
      $('kpi-consents').textContent = number.format(types['consent.granted'] || 0);
      $('kpi-withdrawals').textContent = number.format(types['consent.withdrawn'] || 0);
      $('kpi-erasures').textContent = number.format(types['erasure.requested'] || 0);
      $('kpi-contacts').textContent = number.format(summary.contacts?.total || 0);
      drawDaily(summary);
      drawLevels(summary.contacts);
      drawErasures(erasures.requests);
      await loadLog();
      say(M.loaded);
    } catch (error) {
      fail(error);
    }
  }

  // -------------------------------------------------------------------------------------------- export & verify

  async function exportEvents(format) {
    const r = range();
    if (!r) {
      say(M.badRange, 'export-status');
      return;
    }
    const buttons = [$('export-csv'), $('export-ndjson')];
    for (const b of buttons) b.disabled = true;
    const parts = [];
    let total = 0;
    let cursor;
    try {
      do {
        const res = await call(`/v1/audit/events?${qs(r, { format, limit: '5000', ...(cursor ? { cursor } : {}) })}`);
        parts.push(await res.text());
        total += Number(res.headers.get('x-event-count') || 0);
        cursor = res.headers.get('x-next-cursor');
        say(fmt(M.exporting, { count: number.format(total) }), 'export-status');
      } while (cursor);
      const type = format === 'csv' ? 'text/csv' : 'application/x-ndjson';
      const url = URL.createObjectURL(new Blob(parts, { type }));
      const a = document.createElement('a');
      a.href = url;
      a.download = `audit-${r.from}-${r.to}.${format}`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      say(fmt(M.exported, { count: number.format(total) }), 'export-status');
    } catch (error) {
      fail(error);
      say(explain(error), 'export-status');
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  }

  async function verify() {
    const r = range();
    if (!r) {
      say(M.badRange, 'export-status');
      return;
    }
    const out = $('verify-result');
    $('verify').disabled = true;
    say(M.verifying, 'export-status');
    try {
      const report = await (await call(`/v1/audit/verify?${qs(r)}`)).json();
      localStorage.setItem(
        VERIFIED,
        JSON.stringify({ at: new Date().toISOString(), ...r, valid: report.valid, breaks: report.broken.length }),
      );
      drawVerified();
      const p = document.createElement('p');
      out.replaceChildren(p);
      if (report.valid) {
        p.className = 'ok';
        p.textContent = fmt(M.verifyOk, {
          subjects: number.format(report.subjects),
          events: number.format(report.events),
        });
      } else {
        p.className = 'broken';
        p.textContent = fmt(M.verifyBroken, { count: number.format(report.broken.length) });
        const table = document.createElement('table');
        table.id = 'verify-breaks';
        const head = document.createElement('thead');
        head.append(
          row(
            [M.subjectKey, M.seq, M.reason].map((t) => {
              const th = document.createElement('th');
              th.scope = 'col';
              th.textContent = t;
              return th;
            }),
          ),
        );
        const body = document.createElement('tbody');
        // A chain break names its event by seq; a break the log finds, by leaf index, with what is wrong.
        body.append(
          ...report.broken.map((b) =>
            b.seq !== undefined
              ? row([cell(b.subjectKey), cell(String(b.seq), 'num'), cell(b.reason)])
              : row([
                  cell(b.subjectKey ?? '–'),
                  cell(b.leafIndex === null ? '–' : fmt(M.leaf, { index: b.leafIndex }), 'num'),
                  cell(`${b.reason}: ${b.detail}`),
                ]),
          ),
        );
        table.append(head, body);
        out.append(table);
      }
      say('', 'export-status');
    } catch (error) {
      fail(error);
      say(explain(error), 'export-status');
    } finally {
      $('verify').disabled = false;
    }
  }

  // -------------------------------------------------------------------------------------------- session

  function showBoard(signedIn) {
    $('signin').hidden = signedIn;
    $('board').hidden = !signedIn;
    $('sign-out').hidden = !signedIn;
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    for (const c of Object.values(charts)) c?.destroy();
    showBoard(false);
    say('');
    $('api-key').value = '';
    $('api-key').focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const value = $('api-key').value.trim();
    if (!value) {
      $('api-key').focus();
      return;
    }
    say(M.signingIn, 'signin-error');
    sessionStorage.setItem(KEY, value);
    try {
      await call('/v1/audit/erasures?limit=1');
    } catch (error) {
      sessionStorage.removeItem(KEY);
      say(explain(error), 'signin-error');
      return;
    }
    $('api-key').value = '';
    say('', 'signin-error');
    showBoard(true);
    // Move focus to the board's heading so a screen reader announces the signed-in page.
    $('main').querySelector('h1').focus();
    await load();
  }

  $('signin-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('range-form').addEventListener('submit', (e) => {
    e.preventDefault();
    load();
  });
  $('export-csv').addEventListener('click', () => exportEvents('csv'));
  $('export-ndjson').addEventListener('click', () => exportEvents('ndjson'));
  $('verify').addEventListener('click', verify);

  defaultRange();
  if (key()) {
    showBoard(true);
    load();
  } else {
    showBoard(false);
  }
})();
