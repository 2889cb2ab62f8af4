// The dashboard: polls the read-only API and redraws. Everything it shows comes from the
// API's answers; failures go into #errors (a browser test reads that list, so an error
// must never pass silently).
"use strict";

const POLL_MS = 3000;
const COLORS = ["#4a7bd0", "#d0784a", "#3a9d5d", "#9b59b6", "#c0392b", "#16a085"];
// A token given as /#token=... (the fragment never reaches the server or its logs).
const TOKEN = new URLSearchParams(location.hash.slice(1)).get("token");

const errors = new Set();
function report(message) {
  if (errors.has(message)) return;
  errors.add(message);
  const li = document.createElement("li");
  li.textContent = message;
  document.getElementById("errors").appendChild(li);
}
window.addEventListener("error", (e) => report("script error: " + e.message));
window.addEventListener("unhandledrejection", (e) => report("script error: " + e.reason));

async function api(path) {
  const headers = TOKEN ? { Authorization: "Bearer " + TOKEN } : {};
  const response = await fetch(path, { headers });
  const body = await response.json();
  if (!response.ok) throw new Error(path + ": " + response.status + " " + ((body.error || {}).message || ""));
  return body;
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
}

function signClass(x) {
  const n = Number(x);
  return n > 0 ? "pos" : n < 0 ? "neg" : "";
}

function fill(id, rows, columns, emptyText) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = body.insertRow();
    const td = document.createElement("td");
    td.colSpan = columns;
    td.className = "empty";
    td.textContent = emptyText;
    tr.appendChild(td);
    return;
  }
  for (const r of rows) {
    const tr = body.insertRow();
    for (const [text, cls] of r) cell(tr, text, cls);
  }
}

function fixed(x, digits) {
  return x === null || x === undefined ? null : Number(x).toFixed(digits);
}

function time(seconds) {
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19);
}

function drawEquity(series) {
  const W = 640, H = 220, PAD = 40;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", "100%");
  const all = series.flatMap((s) => s.points);
  const legend = document.createElement("div");
  legend.className = "legend";
  const box = document.getElementById("equity");
  if (all.length === 0) {
    box.replaceChildren("no equity yet");
    return;
  }
  const xs = all.map((p) => p.time_ms), ys = all.map((p) => Number(p.equity));
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = (x) => PAD + ((x - x0) / Math.max(1, x1 - x0)) * (W - 2 * PAD);
  const sy = (y) => H - PAD / 2 - ((y - y0) / Math.max(1e-9, y1 - y0)) * (H - PAD);
  for (const [label, y] of [[y1, 6 + PAD / 2], [y0, H - PAD / 2]]) {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", 2);
    t.setAttribute("y", y);
    t.textContent = Number(label).toFixed(2);
    svg.appendChild(t);
  }
  series.forEach((s, i) => {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", COLORS[i % COLORS.length]);
    line.setAttribute("stroke-width", "1.5");
    line.setAttribute("points", s.points.map((p) => `${sx(p.time_ms).toFixed(1)},${sy(Number(p.equity)).toFixed(1)}`).join(" "));
    svg.appendChild(line);
    const tag = document.createElement("span");
    tag.textContent = "■ " + s.trader + " " + s.equity;
    tag.style.color = COLORS[i % COLORS.length];
    legend.appendChild(tag);
  });
  box.replaceChildren(svg, legend);
}

async function refresh() {
  const [board, totals, trades, conversations, journal] = await Promise.all([
    api("/api/leaderboard"),
    api("/api/account-totals"),
    api("/api/trades?limit=20"),
    api("/api/conversations?limit=10"),
    api("/api/journal"),
  ]);
  fill("leaderboard", board.leaderboard.map((r) => [
    [r.id], [r.equity_exact, signClass(r.return_pct)], [fixed(r.return_pct, 2), signClass(r.return_pct)],
    [fixed(r.sharpe, 2)], [fixed(r.max_drawdown_pct, 2)], [r.num_trades], [fixed(r.win_rate_pct, 1)],
    [fixed(r.fees_paid, 2)],
  ]), 8, "no traders");

  const equities = await Promise.all(board.leaderboard.map((r) => api("/api/traders/" + encodeURIComponent(r.id) + "/equity?span=all&limit=600")));
  drawEquity(equities);

  const positions = [];
  for (const account of totals.accountTotals) {
    for (const p of Object.values(account.positions)) {
      positions.push([
        [account.model_id], [p.symbol], [p.quantity_exact], [p.entry_price_exact], [p.current_price],
        [p.unrealized_pnl_exact, signClass(p.unrealized_pnl)], [p.liquidation_price || null], [fixed(p.liquidation_distance_pct, 2)],
      ]);
    }
  }
  fill("positions", positions, 8, "no open positions");

  fill("trades", trades.trades.map((t) => [
    [t.model_id], [t.symbol], [t.side], [t.quantity], [t.entry_price], [t.exit_price],
    [t.realized_net_pnl_exact, signClass(t.realized_net_pnl)], [time(t.exit_time).slice(5, 16)],
  ]), 8, "no trades yet");

  const box = document.getElementById("conversations");
  box.replaceChildren();
  for (const c of conversations.conversations) {
    for (const m of c.messages) {
      const div = document.createElement("div");
      div.className = "message " + m.role;
      const meta = document.createElement("small");
      meta.textContent = `${c.model_id} · ${m.role} · ${m.model} · ${time(m.timestamp)}` + (m.tokens ? ` · ${m.tokens} tokens` : "");
      div.append(meta, m.content);
      box.appendChild(div);
    }
  }
  if (!box.hasChildNodes()) box.textContent = "no LLM conversations";

  fill("journal", journal.journals.map((j) => [
    [j.name], [j.records], [j.durable_seq], [j.durable_lag_records], [j.head_hash.slice(0, 16)],
    [j.verify === null ? "not checked" : j.verify.ok ? "ok" : "FAILED: " + j.verify.problem, j.verify && !j.verify.ok ? "neg" : ""],
    [j.anomalies],
  ]), 7, "no journals");

  document.getElementById("status").textContent = "updated " + new Date(board.serverTime).toISOString();
}

async function loop() {
  try {
    await refresh();
  } catch (e) {
    report(String(e));
  }
  setTimeout(loop, POLL_MS);
}
loop();
