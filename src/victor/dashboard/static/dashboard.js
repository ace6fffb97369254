// Victor live analytics: one WebSocket (/ws/analytics), events kept in memory for the
// longest range, every chart and table computed from them with the filters applied.
"use strict";
(() => {
  const MAX_RANGE_S = 3600;
  const BUCKETS = { 300: 5, 900: 10, 3600: 30 };  // interval (s) per range
  const COLORS = ["#3b5bdb", "#f08c00", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#868e96"];
  const A = { model: "gen_ai.request.model", input: "gen_ai.usage.input_tokens",
    output: "gen_ai.usage.output_tokens", cached: "gen_ai.usage.cached_input_tokens" };
  const $ = (id) => document.getElementById(id);

  const state = { events: [], ids: new Set(), turnModel: new Map(), epoch: null, seq: 0,
    offset: 0, experiments: [], fanout: "in-process", renders: 0, frames: 0, lags: [] };
  const charts = {};

  // -- token: from the URL fragment (never sent to the server), kept for this tab ------
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) {
    sessionStorage.setItem("victor-dashboard-token", hash.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  const token = () => sessionStorage.getItem("victor-dashboard-token") || "";

  // -- formatting ------------------------------------------------------------------------
  const num = (v, digits = 0) => v == null || !isFinite(v) ? "–"
    : v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const compact = (v) => v == null ? "" : Math.abs(v) >= 1e6 ? num(v / 1e6, 1) + "M"
    : Math.abs(v) >= 1e3 ? num(v / 1e3, 1) + "k" : num(v, Math.abs(v) < 10 && v % 1 ? 2 : 0);
  const usd = (v) => v == null ? "unpriced" : "$" + (Math.abs(v) < 1 ? v.toFixed(4) : num(v, 2));
  const ms = (v) => v == null ? "–" : v >= 1000 ? num(v / 1000, 2) + " s" : num(v, v < 10 ? 1 : 0) + " ms";
  const signed = (v) => v == null || !isFinite(v) ? "–" : (v > 0 ? "+" : "") + num(v * 100, 1) + "%";
  const pct = (v, d = 1) => v == null || !isFinite(v) ? "–" : num(v * 100, d) + "%";
  const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

  // -- events ----------------------------------------------------------------------------
  function add(events) {
    let last = state.events.length ? state.events[state.events.length - 1].ts : 0, unsorted = false;
    for (const e of events) {
      if (state.ids.has(e.id)) continue;
      state.ids.add(e.id);
      state.events.push(e);
      if (e.ts < last) unsorted = true; else last = e.ts;
      const model = e.data && e.data[A.model];
      if (model && e.data.turn_id) state.turnModel.set(e.data.turn_id, model);
    }
    if (unsorted) state.events.sort((a, b) => a.ts - b.ts);
    schedule();
  }

  function prune(now) {
    const horizon = now - MAX_RANGE_S * 1000 - 60000;
    let n = 0;
    while (n < state.events.length && state.events[n].ts < horizon) state.ids.delete(state.events[n++].id);
    if (n) state.events.splice(0, n);
    if (state.turnModel.size > 50000) state.turnModel.clear();
  }

  const modelOf = (e) => (e.data && e.data[A.model]) || (e.data && state.turnModel.get(e.data.turn_id)) || null;

  // -- WebSocket -------------------------------------------------------------------------
  let ws = null, retry = 500, welcomed = false;
  function connect() {
    setPill("conn", state.epoch ? "reconnecting" : "connecting", state.epoch ? "Reconnecting" : "Connecting");
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/analytics");
    welcomed = false;
    ws.onopen = () => ws.send(JSON.stringify({ type: "hello", token: token(), epoch: state.epoch, last_seq: state.seq }));
    ws.onmessage = (m) => { state.frames++; handle(JSON.parse(m.data)); };
    ws.onclose = (e) => {
      if (e.code === 1008 && !welcomed) { showLogin(true); setPill("conn", "closed", "Token refused"); return; }
      setPill("conn", "reconnecting", "Reconnecting");
      setTimeout(connect, e.code === 1013 ? 100 : retry);
      retry = Math.min(retry * 2, 5000);
    };
  }

  function handle(msg) {
    switch (msg.type) {
      case "welcome":
        welcomed = true; retry = 500;
        if (!msg.resumed) { state.events = []; state.ids.clear(); }
        state.epoch = msg.epoch;
        if (!msg.resumed) state.seq = msg.seq;  // the snapshot covers up to here
        state.offset = msg.server_time - Date.now();
        showLogin(false); setPill("conn", "live", "Live");
        break;
      case "snapshot": add(msg.events); break;
      case "batch": {
        if (msg.seq > state.seq) state.seq = msg.seq;
        const now = Date.now() + state.offset;  // how long each event took to get here
        for (const e of msg.events) state.lags.push(now - e.ts);
        if (state.lags.length > 20000) state.lags.splice(0, state.lags.length - 10000);
        add(msg.events);
        break;
      }
      case "status":
        state.fanout = msg.fanout;
        setPill("fanout", msg.fanout, msg.fanout === "redis" ? "Redis fan-out"
          : msg.fanout === "redis-down" ? "Redis unreachable: in-process only" : "In-process");
        $("fanout").title = msg.detail || "";
        break;
      case "experiments": state.experiments = msg.experiments; schedule(); break;
    }
  }

  function setPill(id, st, text) { const el = $(id); el.dataset.state = st; el.textContent = text; }

  function showLogin(show) {
    $("login").hidden = !show; $("main").hidden = show;
    $("filters").hidden = show; document.querySelector(".foot").hidden = show;
    $("login-error").hidden = !(show && token());
  }
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("victor-dashboard-token", $("login-token").value);
    connect();
  });

  // -- charts ----------------------------------------------------------------------------
  const clock = (t) => new Date(t * 1000).toLocaleTimeString("en-GB",
    +$("f-range").value <= 300 ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" });

  // sparse: a series with gaps (percentiles of quiet intervals), drawn with its points.
  function chart(id, unit, labels, fmt, sparse = false) {
    const key = labels.join("|");
    const el = $(id);
    if (charts[id] && charts[id].key === key) return charts[id].plot;
    if (charts[id]) charts[id].plot.destroy();
    const opts = {
      width: el.clientWidth || 500, height: 230,
      legend: { live: true }, cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: "#6a7385", grid: { stroke: "#eef1f6" }, ticks: { stroke: "#e3e7ef" }, space: 70,
          values: (u, splits) => splits.map(clock) },
        { label: unit, labelSize: 18, size: 56, stroke: "#6a7385", grid: { stroke: "#eef1f6" },
          ticks: { stroke: "#e3e7ef" }, values: (u, splits) => splits.map(fmt) },
      ],
      series: [{ label: "time", value: (u, t) => t == null ? "–" : clock(t) }, ...labels.map((label, i) => ({
        label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: sparse,
        points: { show: sparse ? true : undefined, size: 5 },
        fill: labels.length === 1 ? COLORS[0] + "14" : undefined,
        value: (u, v) => v == null ? "–" : fmt(v) + " " + unit,
      }))],
    };
    const plot = new uPlot(opts, [[], ...labels.map(() => [])], el);
    charts[id] = { key, plot, unit, labels };
    return plot;
  }

  new ResizeObserver(() => {
    for (const id in charts) charts[id].plot.setSize({ width: $(id).clientWidth, height: 230 });
  }).observe(document.body);

  // -- aggregation -----------------------------------------------------------------------
  function quantile(sorted, q) {
    if (!sorted.length) return null;
    return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
  }

  function filters() {
    return { tenant: $("f-tenant").value, model: $("f-model").value,
      experiment: $("f-experiment").value, range: +$("f-range").value };
  }

  function compute() {
    const f = filters(), now = Date.now() + state.offset, b = BUCKETS[f.range] || 10;
    const start = Math.floor((now - f.range * 1000) / (b * 1000)) * b * 1000;
    const n = Math.ceil((now - start) / (b * 1000));
    const zero = () => new Array(n).fill(0);
    const s = { b, n, x: Array.from({ length: n }, (_, i) => (start + i * b * 1000) / 1000),
      req: zero(), turns: zero(), tools: zero(), inTok: zero(), outTok: zero(), cached: zero(),
      errs: zero(), lat: Array.from({ length: n }, () => []), sess: Array.from({ length: n }, () => new Set()),
      costByModel: new Map(), models: new Map(), toolStats: new Map(), errTypes: new Map(),
      selection: new Map(), offered: new Map(), turnLat: [], cost: 0, unpriced: 0, ops: 0, errors: 0,
      recent: { req: 0, tok: 0, sessions: new Set() }, seen: { tenant: new Set(), model: new Set(), experiment: new Set() } };
    const lastMinute = now - 60000, last5 = now - 300000;
    for (const e of state.events) {
      const model = modelOf(e);
      if (e.tenant) s.seen.tenant.add(e.tenant);
      if (model) s.seen.model.add(model);
      if (e.experiment) s.seen.experiment.add(e.experiment);
      if (e.ts < start || e.ts > now + 5000) continue;
      if (f.tenant && e.tenant !== f.tenant) continue;
      if (f.experiment && e.experiment !== f.experiment) continue;
      if (f.model && model !== f.model) continue;
      const i = Math.min(n - 1, Math.floor((e.ts - start) / (b * 1000))), d = e.data || {};
      if (e.session) { s.sess[i].add(e.session); if (e.ts >= last5) s.recent.sessions.add(e.session); }
      switch (e.type) {
        case "llm_request": {
          s.req[i]++; s.ops++; if (e.ts >= lastMinute) s.recent.req++;
          const m = s.models.get(model) || { requests: 0, tokens: 0, cost: 0, priced: false, lat: [] };
          m.requests++; if (d.latency_ms != null) m.lat.push(d.latency_ms);
          s.models.set(model, m);
          break;
        }
        case "chat_complete":
          s.turns[i]++; if (d.latency_ms != null) { s.lat[i].push(d.latency_ms); s.turnLat.push(d.latency_ms); }
          break;
        case "token_usage": {
          const inp = d[A.input] || 0, out = d[A.output] || 0;
          s.inTok[i] += inp; s.outTok[i] += out; s.cached[i] += d[A.cached] || 0;
          if (e.ts >= lastMinute) s.recent.tok += inp + out;
          const m = s.models.get(model) || { requests: 0, tokens: 0, cost: 0, priced: false, lat: [] };
          m.tokens += inp + out;
          if (d.cost_usd != null) { m.cost += d.cost_usd; m.priced = true; s.cost += d.cost_usd; } else s.unpriced++;
          s.models.set(model, m);
          const c = s.costByModel.get(model) || zero();
          c[i] += d.cost_usd || 0; s.costByModel.set(model, c);
          break;
        }
        case "tool_call": {
          s.tools[i]++; s.ops++;
          const name = d.tool || d["gen_ai.tool.name"] || "?";
          const t = s.toolStats.get(name) || { calls: 0, errors: 0, dur: [] };
          t.calls++; if (d.is_error) { t.errors++; s.errors++; }
          if (d.duration_ms != null) t.dur.push(d.duration_ms);
          s.toolStats.set(name, t);
          const offered = d.turn_id && s.offered.get(d.turn_id);
          if (offered) { offered.calls++; if (offered.chosen.has(name)) offered.hits++; }
          break;
        }
        case "tool_selection": {
          const strategy = d.strategy || "?";
          const sel = s.selection.get(strategy) || { selections: 0, calls: 0, hits: 0, fallbacks: 0 };
          sel.selections++; if (d.fallback) sel.fallbacks++;
          s.selection.set(strategy, sel);
          if (d.turn_id) s.offered.set(d.turn_id, Object.assign({ chosen: new Set(d.chosen || []), calls: 0, hits: 0 }, { sel }));
          break;
        }
        case "error": {
          s.errs[i]++; s.ops++; s.errors++;
          const t = s.errTypes.get(d.error_type || "error") || { count: 0, message: "", stage: "" };
          t.count++; t.message = d.message || t.message; t.stage = d.stage || t.stage;
          s.errTypes.set(d.error_type || "error", t);
          break;
        }
      }
    }
    for (const o of s.offered.values()) { o.sel.calls += o.calls; o.sel.hits += o.hits; }
    return s;
  }

  // -- rendering -------------------------------------------------------------------------
  let pending = false;
  function schedule() { if (!pending) { pending = true; setTimeout(render, 250); } }

  function render() {
    pending = false;
    prune(Date.now() + state.offset);
    const s = compute(), b = s.b, f = filters();
    const rate = (arr) => arr.map((v) => v / b);
    chart("c-rate", "per s", ["model requests", "chat turns", "tool calls"], compact)
      .setData([s.x, rate(s.req), rate(s.turns), rate(s.tools)]);
    chart("c-tokens", "tokens/s", ["input", "output", "cached input"], compact)
      .setData([s.x, rate(s.inTok), rate(s.outTok), rate(s.cached)]);
    const sorted = s.lat.map((l) => l.slice().sort((p, q) => p - q));
    chart("c-latency", "ms", ["p50", "p95", "p99"], compact, true)
      .setData([s.x, ...[0.5, 0.95, 0.99].map((q) => sorted.map((l) => quantile(l, q)))]);
    const costModels = [...s.costByModel.keys()].slice(0, COLORS.length);
    const cumulative = costModels.map((m) => { let t = 0; return s.costByModel.get(m).map((v) => (t += v)); });
    chart("c-cost", "USD", costModels.length ? costModels.map(String) : ["cost"],
      (v) => v < 1 ? v.toFixed(v < 0.01 ? 4 : 3) : num(v, 2))
      .setData([s.x, ...(cumulative.length ? cumulative : [s.x.map(() => 0)])]);
    chart("c-sessions", "count", ["active sessions", "errors"], compact)
      .setData([s.x, s.sess.map((x) => x.size), s.errs]);

    $("k-rps").textContent = num(s.recent.req / 60, 2) + " /s";
    $("k-tps").textContent = compact(s.recent.tok / 60) + " /s";
    $("k-cost").textContent = usd(s.cost);
    $("k-cost-note").textContent = s.unpriced ? `in range, ${s.unpriced} unpriced calls` : "in range";
    $("k-p95").textContent = ms(quantile(s.turnLat.sort((p, q) => p - q), 0.95));
    $("k-sessions").textContent = num(s.recent.sessions.size);
    $("k-errors").textContent = s.ops ? pct(s.errors / s.ops) : "–";
    let calls = 0, hits = 0;
    for (const v of s.selection.values()) { calls += v.calls; hits += v.hits; }
    $("k-hits").textContent = calls ? pct(hits / calls) : "–";

    table("t-models", ["Model", "Requests", "Tokens", "Cost", "p50", "p95"], [...s.models].map(([m, v]) => {
      const l = v.lat.sort((p, q) => p - q);
      return [esc(m || "–"), num(v.requests), compact(v.tokens), v.priced ? usd(v.cost) : "unpriced",
        ms(quantile(l, 0.5)), ms(quantile(l, 0.95))];
    }), "No model calls in range");
    const maxCalls = Math.max(1, ...[...s.toolStats.values()].map((t) => t.calls));
    table("t-tools", ["Tool", "Calls", "", "Errors", "Error rate", "p95"], [...s.toolStats]
      .sort((p, q) => q[1].calls - p[1].calls).map(([name, t]) => [esc(name), num(t.calls),
        `<div class="bar"><i style="width:${100 * t.calls / maxCalls}%"></i><i class="err" style="width:${100 * t.errors / maxCalls}%"></i></div>`,
        num(t.errors), pct(t.errors / t.calls), ms(quantile(t.dur.sort((p, q) => p - q), 0.95))]), "No tool calls in range");
    table("t-errors", ["Type", "Count", "Stage", "Last message"], [...s.errTypes]
      .sort((p, q) => q[1].count - p[1].count).map(([type, t]) => [esc(type), num(t.count), esc(t.stage),
        `<span title="${esc(t.message)}">${esc(t.message.slice(0, 60))}</span>`]), "No errors in range");
    table("t-selection", ["Strategy", "Selections", "Fallbacks", "Tool calls", "Hit rate"], [...s.selection]
      .map(([name, v]) => [esc(name), num(v.selections), num(v.fallbacks), num(v.calls), v.calls ? pct(v.hits / v.calls) : "–"]),
      "No tool selection in range");

    options("f-tenant", s.seen.tenant); options("f-model", s.seen.model);
    options("f-experiment", new Set([...s.seen.experiment, ...state.experiments.map((e) => e.experiment)]));
    experiments(f.experiment);
    $("foot-events").textContent = `${num(state.events.length)} events in memory`;
    const lag = state.lags.slice(-200).sort((p, q) => p - q);
    $("foot-seq").textContent = (state.epoch ? `batch #${state.seq}` : "") +
      (lag.length ? ` · events arrive ${ms(quantile(lag, 0.5))} after they happen (median)` : "");
    state.renders++;
  }

  function table(id, head, rows, empty) {
    const numeric = head.map((h, i) => i > 0 && h !== "" && h !== "Stage" && h !== "Last message");
    $(id).innerHTML = `<thead><tr>${head.map((h, i) => `<th class="${numeric[i] ? "num" : ""}">${h}</th>`).join("")}</tr></thead><tbody>` +
      (rows.length ? rows.map((r) => `<tr>${r.map((c, i) => `<td class="${numeric[i] ? "num" : ""}">${c}</td>`).join("")}</tr>`).join("")
        : `<tr><td class="empty" colspan="${head.length}">${empty}</td></tr>`) + "</tbody>";
  }

  function options(id, values) {
    const el = $(id), have = new Set([...el.options].map((o) => o.value));
    for (const v of [...values].sort()) if (!have.has(v)) el.add(new Option(v, v));
  }

  function ci(summary, fmt) {
    if (!summary) return "–";
    return `${fmt(summary.mean)} <small>[${fmt(summary.ci_low)}, ${fmt(summary.ci_high)}]</small>`;
  }

  function experiments(only) {
    const list = state.experiments.filter((e) => !only || e.experiment === only);
    $("experiments").hidden = !list.length;
    $("experiment-list").innerHTML = list.map((e) => {
      if (e.error) return `<div class="exp"><h4>${esc(e.experiment)}</h4><div class="meta">${esc(e.error)}</div></div>`;
      const srm = e.srm || {};
      const srmBadge = srm.flagged ? `<span class="badge srm-bad">SRM failed, p=${(srm.p_value ?? 0).toPrecision(2)}</span>`
        : `<span class="badge srm-ok">split ok (SRM p=${(srm.p_value ?? 1).toFixed(2)})</span>`;
      const primary = e.primary || "primary metric";
      const id = "exp-" + e.experiment.replace(/[^a-zA-Z0-9_-]/g, "_");
      const verdicts = e.variants.filter((v) => v.verdict).map((v) => `<div class="verdict">${esc(v.verdict)}</div>`).join("");
      return `<div class="exp" data-experiment="${esc(e.experiment)}"><h4>${esc(e.experiment)} ${srmBadge}</h4>
        <div class="meta">unit: ${esc(e.unit)} · primary metric: ${esc(primary)} (mean per ${esc(e.unit)}, 95% CI)</div>
        <table class="table variants" id="${id}"></table>${verdicts}</div>`;
    }).join("");
    for (const e of list) {
      if (e.error) continue;
      const id = "exp-" + e.experiment.replace(/[^a-zA-Z0-9_-]/g, "_");
      const rows = e.variants.map((v) => {
        const fmtP = (x) => x == null ? "–" : Math.abs(x) <= 1 ? num(x, 3) : num(x, 1);
        const lift = v.lift ? `${signed(v.lift.relative)} <small>[${signed(v.lift.relative_ci[0])}, ${signed(v.lift.relative_ci[1])}]</small>` : (v.control ? "baseline" : "–");
        const decision = v.decision ? `<span class="badge ${v.decision.replace(" ", "-")}">${esc(v.decision)}</span>` : '<span class="badge">control</span>';
        return [esc(v.name), num(v.units), ci(v.primary, fmtP), lift, ms(v.latency_ms),
          v.cost_usd == null ? "–" : usd(v.cost_usd), v.feedback == null ? "–" : num(v.feedback, 2), decision];
      });
      table(id, ["Variant", e.unit === "session" ? "Sessions" : "Units", e.primary || "Primary", "Lift vs control", "Latency (mean)", "Cost / unit", "Feedback", "Verdict"], rows, "No data");
    }
  }

  for (const id of ["f-tenant", "f-model", "f-experiment", "f-range"]) $(id).addEventListener("change", render);
  setInterval(render, 1000);
  window.victorDashboard = { state, charts, render,
    series: (id) => charts[id] ? charts[id].plot.data.map((a) => Array.from(a)) : null };
  connect();
})();
