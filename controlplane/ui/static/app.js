// evac dashboard: polls the admin API of the controller that served it.
// Every request carries the signed-in token as a Bearer token.
"use strict";

const TOKEN_KEY = "evac.token";
const POLL_MS = 2000;
const EVENTS_MS = 1500;
const MAX_EVENTS = 300;

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY) || "";
let lastSeq = 0;
let timers = [];
let pending = null; // {region, action} of the open confirmation dialog
let authOff = false; // the controller needs no token: no sign-in, no sign-out

// el builds an element; children are nodes or strings (set as text, never HTML).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

class APIError extends Error {
  constructor(status, code, msg) { super(msg); this.status = status; this.code = code; }
}

async function api(method, path, body) {
  const opts = { method, headers: { "Authorization": "Bearer " + token } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  let data = null;
  try { data = await res.json(); } catch (_) { /* not JSON */ }
  if (!res.ok) {
    const msg = data && data.error ? data.error : res.status + " " + res.statusText;
    const err = new APIError(res.status, data && data.code, msg);
    if (res.status === 401 && !$("dash").hidden) signOut("signed out: the controller refused the token: " + msg);
    throw err;
  }
  return data;
}

function bar(kind, frac, low) {
  const pct = Math.max(0, Math.min(1, frac)) * 100;
  const fill = el("span", {});
  fill.style.width = pct.toFixed(1) + "%"; // CSSOM, allowed by the page's CSP (style attributes are not)
  return el("div", { class: "bar " + kind + (low ? " low" : "") }, fill);
}

function ago(t) {
  const d = (Date.now() - new Date(t).getTime()) / 1000;
  if (!isFinite(d) || d < 0) return "";
  if (d < 90) return Math.round(d) + "s ago";
  if (d < 5400) return Math.round(d / 60) + "m ago";
  return Math.round(d / 3600) + "h ago";
}

// until renders a future time as "in 19s" ("now" once past).
function until(t) {
  const d = (new Date(t).getTime() - Date.now()) / 1000;
  if (!isFinite(d)) return "";
  if (d <= 0) return "now";
  if (d < 90) return "in " + Math.round(d) + "s";
  if (d < 5400) return "in " + Math.round(d / 60) + "m";
  return "in " + Math.round(d / 3600) + "h";
}

function showBanner(msg) {
  const b = $("banner");
  b.textContent = msg || "";
  b.hidden = !msg;
}

// ---- regions -------------------------------------------------------------

let sharesByRegion = {};

function renderRegions(regions) {
  const box = $("regions");
  box.replaceChildren(...regions.map((r) => {
    const health = r.health === null || r.health === undefined ? null : r.health;
    const out = r.state === "evacuated" || r.state === "evacuating";
    const share = sharesByRegion[r.name];
    // A drill's evacuation is planned: it wears its own badge, not an incident's.
    const d = r.drill;
    const badge = d ? el("span", { class: "badge state drill", title: "held by drill " + d.id }, "drill · " + r.state)
      : el("span", { class: "badge state " + r.state }, r.state);
    return el("div", { class: "region", "data-region": r.name, "data-state": r.state, "data-drill": d ? d.id : "" },
      el("h3", {}, r.name, badge),
      el("div", { class: "row" }, "weight", bar("weight", r.weight / 100), el("span", { class: "num weight" }, r.weight)),
      el("div", { class: "row" }, "health", bar("health", health === null ? 0 : health, health !== null && health < 0.5),
        el("span", { class: "num" }, health === null ? "?" : Math.round(health * 100) + "%")),
      el("div", { class: "row" }, "DNS share", bar("dns", share === undefined ? 0 : share),
        el("span", { class: "num share" }, share === undefined ? "–" : Math.round(share * 100) + "%")),
      el("div", { class: "row", title: "share of the nearest answers whose clients are homed here (measured)" }, "home share",
        bar("home", r.home_share === undefined ? 0 : r.home_share),
        el("span", { class: "num home-share" }, r.home_share === undefined ? "–" : Math.round(r.home_share * 100) + "%")),
      spillTable(r),
      el("div", { class: "meta" }, "agents " + r.agents_alive + "/" + r.agents_total +
        (r.ramp ? " · ramp in progress" : "") + (r.automatic ? " · automatic" : "")),
      d ? el("div", { class: "meta drill-step" }, "drill " + d.runbook + " · step " + d.step + "/" + d.steps +
        (d.step_kind ? " " + d.step_kind : "") + (d.next_at ? " · next " + until(d.next_at) : "")) : null,
      el("div", { class: "meta reason", title: r.reason || "" },
        r.reason ? (r.actor ? r.actor + ": " : "") + r.reason + " (" + ago(r.since) + ")" : ""),
      el("div", { class: "buttons" },
        el("button", { type: "button", class: "evacuate danger", disabled: out, onclick: () => openConfirm(r.name, "evacuate") }, "Evacuate"),
        el("button", { type: "button", class: "restore primary", disabled: r.state === "active", onclick: () => openConfirm(r.name, "restore") }, "Restore")));
  }));
}

// spillTable shows where a region's clients went while its weight is
// lowered: the leader's spill plan (share of the moving clients each
// receiving region takes, the share it accepts, its predicted
// utilisation).
function spillTable(r) {
  const p = r.spill;
  if (!p || !p.flows || !p.flows.length) return null;
  return el("table", { class: "spill", "data-spill": r.name },
    el("caption", {}, "its clients went to"),
    el("tr", {}, el("th", {}, "region"), el("th", {}, "share"), el("th", {}, "accepts"), el("th", {}, "util.")),
    ...p.flows.map((f) => el("tr", { "data-to": f.to },
      el("td", {}, "→ " + f.to),
      el("td", { class: "num" }, Math.round(f.share * 100) + "%"),
      el("td", { class: "num" + (f.accept < 1 ? " warn" : "") }, Math.round(f.accept * 100) + "%"),
      el("td", { class: "num" + (f.utilization > 1 ? " bad" : "") }, f.utilization === undefined ? "–" : f.utilization.toFixed(2)))));
}

// nearestShares is each region's share of a nearest service's answers:
// the measured home shares, less what each region's weight moves off it,
// plus what the spill plans send it. Nothing is inferred from weights.
function nearestShares(svc, regions) {
  const out = {};
  for (const r of svc.regions || []) out[r.region] = 0;
  for (const r of regions) {
    if (r.home_share === undefined) continue;
    const keep = r.weight / 100;
    if (r.name in out) out[r.name] += r.home_share * keep;
    for (const f of (r.spill && r.spill.flows) || []) {
      if (f.to in out) out[f.to] += r.home_share * (1 - keep) * f.share;
    }
  }
  return out;
}

// shares computes each region's share of a service's DNS answers from the
// effective weights /v1/services reports, by the service's policy (for
// nearest, from the measured home demand).
function shares(svc, regions) {
  const out = {};
  const regs = svc.regions || [];
  if (svc.policy === "nearest") return nearestShares(svc, regions || []);
  const sum = regs.reduce((s, r) => s + Math.max(0, r.effective_weight), 0);
  if (svc.policy === "failover") {
    const first = regs.find((r) => r.effective_weight > 0);
    for (const r of regs) out[r.region] = first && first.region === r.region ? 1 : 0;
  } else if (svc.policy === "all") {
    for (const r of regs) out[r.region] = r.effective_weight > 0 ? 1 : 0;
  } else {
    for (const r of regs) out[r.region] = sum > 0 ? Math.max(0, r.effective_weight) / sum : 0;
  }
  return out;
}

function renderShares(services, regions) {
  sharesByRegion = {};
  const box = $("shares");
  if (!services.length) { box.replaceChildren(el("p", { class: "muted" }, "no services")); return; }
  box.replaceChildren(...services.map((svc, i) => {
    const sh = shares(svc, regions);
    if (i === 0) sharesByRegion = sh; // region cards show the first service
    return el("div", { class: "share-svc", "data-service": svc.name },
      el("div", { class: "title" }, el("b", {}, svc.fqdn), " · " + svc.policy + (i === 0 ? " (shown on region cards)" : "")),
      ...(svc.regions || []).map((r) => el("div", { class: "row", "data-region": r.region },
        r.region, bar("dns", sh[r.region]),
        el("span", { class: "num" }, Math.round(sh[r.region] * 100) + "%"))));
  }));
}

function renderMembers(members) {
  const tb = $("members").tBodies[0];
  tb.replaceChildren(...members.map((m) => el("tr", { "data-member": m.name },
    el("td", {}, m.name), el("td", {}, m.region), el("td", {}, m.role), el("td", {}, m.state),
    el("td", {}, m.role === "agent" ? m.last_report_age_seconds.toFixed(1) + "s" : ""),
    el("td", {}, (m.failing || []).join(", ")))));
}

function renderStatus(st) {
  $("cluster").textContent = "node " + st.node_id + " · leader " + (st.leader || "none") +
    " · term " + st.term + " · config v" + st.config_version + " · serial " + st.serial;
  const f = $("frozen");
  f.hidden = !st.frozen;
  f.title = st.frozen_reason || "";
  const fb = $("frozen-banner");
  fb.hidden = !st.frozen;
  if (st.frozen) {
    const who = [st.frozen_since ? "since " + ago(st.frozen_since) : "", st.frozen_by ? "by " + st.frozen_by : ""].filter(Boolean).join(", ");
    fb.textContent = "FROZEN: " + (st.frozen_reason || "no reason given") + (who ? " (" + who + ")" : "") +
      ". Automatic evacuation and restore are off until unfrozen; regions stay as they are, whatever their health.";
  }
}

function renderNotifications(sinks) {
  const box = $("notifications");
  $("notifications-panel").hidden = !sinks.length;
  box.tBodies[0].replaceChildren(...sinks.map((n) => el("tr", { "data-sink": n.name },
    el("td", {}, n.name), el("td", {}, n.type), el("td", { class: "num" }, n.delivered),
    el("td", { class: "num" + (n.failed ? " bad" : "") }, n.failed), el("td", { class: "num" + (n.pending ? " warn" : "") }, n.pending),
    el("td", { class: "reason" }, n.retrying ? "retrying: " + n.retrying : (n.last_error ? ago(n.last_error_at) + ": " + n.last_error : "")))));
}

async function refresh() {
  try {
    const [st, services, regions, members, sinks] = await Promise.all([
      api("GET", "/v1/status"),
      api("GET", "/v1/services").catch((e) => { if (e.code === "no_config") return []; throw e; }),
      api("GET", "/v1/regions").catch((e) => { if (e.code === "no_config") return []; throw e; }),
      api("GET", "/v1/members"),
      api("GET", "/v1/notifications").catch(() => []),
    ]);
    renderStatus(st);
    renderNotifications(sinks);
    renderShares(services, regions);
    renderRegions(regions);
    renderMembers(members);
    showBanner(regions.length ? "" : "no steering config applied yet (evac apply -f FILE)");
  } catch (e) {
    if (token) showBanner("cannot reach the admin API: " + e.message);
  }
}

// ---- events --------------------------------------------------------------

// Drain reports (one per step and controller) belong to their drill's
// report: the events view counts them instead of listing each.
let foldedDrains = 0;

function eventRow(ev) {
  let text = ev.reason || "";
  if (ev.detail) text += (text ? " — " : "") + ev.detail;
  if (ev.weight !== undefined && ev.weight !== null) text += (text ? " " : "") + "(weight " + ev.weight + ")";
  return el("tr", { "data-seq": ev.seq, "data-kind": ev.kind, "data-region": ev.region || "" },
    el("td", { class: "num" }, ev.seq), el("td", { class: "nowrap" }, new Date(ev.time).toLocaleTimeString([], { hour12: false })),
    el("td", {}, ev.kind), el("td", { class: "nowrap" }, ev.region || ""), el("td", {}, ev.actor), el("td", { class: "reason" }, text));
}

async function pollEvents() {
  try {
    // Page forward until caught up; only the newest MAX_EVENTS are shown.
    for (let i = 0; i < 100; i++) {
      const evs = await api("GET", "/v1/events?since=" + lastSeq + "&limit=1000");
      if (!evs.length) break;
      lastSeq = evs[evs.length - 1].seq;
      const tb = $("events").tBodies[0];
      const shown = evs.filter((e) => e.kind !== "drill.drain");
      foldedDrains += evs.length - shown.length;
      const rows = shown.slice(-MAX_EVENTS).reverse().map(eventRow);
      tb.prepend(...rows);
      while (tb.rows.length > MAX_EVENTS) tb.deleteRow(tb.rows.length - 1);
      if (evs.length < 1000) break;
    }
    $("events-note").textContent = "live · up to seq " + lastSeq +
      (foldedDrains ? " · " + foldedDrains + " drain reports in their drills' reports" : "");
  } catch (e) {
    $("events-note").textContent = "not updating: " + e.message;
  }
}

// ---- drills --------------------------------------------------------------

async function loadDrills() {
  const box = $("drills");
  let res;
  try {
    res = await fetch("/v1/drills", { headers: { "Authorization": "Bearer " + token } });
  } catch (e) {
    box.textContent = "drills: not available on this controller";
    return;
  }
  if (res.status !== 200) {
    box.textContent = "drills: not available on this controller";
    return;
  }
  const drills = await res.json();
  if (!Array.isArray(drills) || !drills.length) { box.textContent = "no drills"; return; }
  const cols = ["id", "runbook", "status", "step", "started", "drain 50/90/99%"];
  const cell = (d, c) => {
    const n = (d.steps || []).length;
    if (c === "step") return n ? `${Math.min(d.current + 1, n)}/${n}` : "";
    if (c === "started") return d.started_at ? new Date(d.started_at).toLocaleTimeString([], { hour12: false }) : "";
    if (c === "drain 50/90/99%") {
      const s = d.drain_summary;
      return s ? [s.p50_ms, s.p90_ms, s.p99_ms].map(fmtMs).join(" / ") : "–";
    }
    return d[c] === undefined ? "" : String(d[c]);
  };
  box.replaceChildren(el("table", {},
    el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", {}, c)), el("th", {}, ""))),
    el("tbody", {}, ...drills.map((d) => el("tr", { "data-runbook": d.runbook, "data-status": d.status, "data-drill": d.id || "" },
      ...cols.map((c) => el("td", {}, cell(d, c))),
      el("td", {}, d.id ? el("button", { type: "button", class: "report", onclick: () => showReport(d.id) }, "Report") : null))))));
  if (openReport) {
    const cur = drills.find((d) => d.id === openReport.id);
    if (cur && (cur.status === "running" || cur.status !== openReport.status ||
        JSON.stringify(cur.drain_summary || null) !== openReport.summary)) showReport(cur.id);
  }
}

// The drill whose report is open: refreshed while it runs or gets reports.
let openReport = null;

async function showReport(id) {
  const box = $("drill-report");
  let d;
  try {
    d = await api("GET", "/v1/drills/" + encodeURIComponent(id));
  } catch (e) {
    box.hidden = false;
    box.replaceChildren(el("p", { class: "error" }, "report of " + id + ": " + e.message));
    return;
  }
  openReport = { id: d.id, status: d.status, summary: JSON.stringify(d.drain_summary || null) };
  const [chart, legend] = drillChart(d);
  box.hidden = false;
  box.dataset.drill = d.id;
  box.dataset.status = d.status;
  box.replaceChildren(...[
    el("h3", {}, "Drill " + d.id + " · " + d.runbook + " · " + d.status,
      el("button", { type: "button", class: "close", onclick: () => { openReport = null; box.hidden = true; } }, "Close")),
    d.outcome ? el("p", { class: "muted small" }, d.outcome) : null,
    chart, legend,
    d.timeline_complete === false ? el("p", { class: "muted small" }, "the audit log no longer reaches back to this drill's start: weights before it may be missing") : null,
    drainTable(d)].filter((n) => n !== null));
}

// ---- evacuate / restore --------------------------------------------------

function openConfirm(region, action) {
  pending = { region, action };
  $("confirm-title").textContent = (action === "evacuate" ? "Evacuate " : "Restore ") + region + "?";
  $("confirm-text").textContent = action === "evacuate"
    ? "Traffic leaves " + region + " through the configured ramp. Clients are steered to the other regions."
    : "Traffic returns to " + region + " through the configured ramp.";
  $("reason").value = "";
  $("force").checked = false;
  $("force-row").hidden = action !== "evacuate";
  $("confirm-error").textContent = "";
  $("confirm-ok").disabled = true;
  $("confirm-ok").textContent = action === "evacuate" ? "Evacuate" : "Restore";
  $("confirm").showModal();
  $("reason").focus();
}

async function submitConfirm(ev) {
  ev.preventDefault();
  if (!pending) return;
  const reason = $("reason").value.trim();
  if (!reason) { $("confirm-error").textContent = "a reason is required"; return; }
  const body = { reason };
  if (pending.action === "evacuate" && $("force").checked) body.force = true;
  $("confirm-ok").disabled = true;
  try {
    await api("POST", "/v1/regions/" + encodeURIComponent(pending.region) + "/" + pending.action, body);
    $("confirm").close();
    pending = null;
    await Promise.all([refresh(), pollEvents()]);
  } catch (e) {
    $("confirm-error").textContent = e.message + (e.code ? " (" + e.code + ")" : "");
    $("confirm-ok").disabled = false;
  }
}

// ---- sign-in -------------------------------------------------------------

function start() {
  $("signin").hidden = true;
  $("dash").hidden = false;
  $("signout").hidden = authOff;
  refresh();
  pollEvents();
  loadDrills();
  timers.push(setInterval(refresh, POLL_MS), setInterval(pollEvents, EVENTS_MS), setInterval(loadDrills, 15000));
}

function signOut(msg) {
  token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  timers.forEach(clearInterval);
  timers = [];
  lastSeq = 0;
  $("events").tBodies[0].replaceChildren();
  $("dash").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  $("cluster").textContent = "not signed in";
  $("signin-error").textContent = msg || "";
}

async function signIn(ev) {
  ev.preventDefault();
  const t = $("token").value.trim();
  if (!t) return;
  token = t;
  try {
    await api("GET", "/v1/status");
  } catch (e) {
    $("signin-error").textContent = e.status === 401
      ? "token refused: " + e.message
      : "cannot reach the admin API: " + e.message;
    $("token").value = "";
    token = "";
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  $("signin-error").textContent = "";
  start();
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", () => signOut(""));
  $("confirm-form").addEventListener("submit", submitConfirm);
  $("confirm-cancel").addEventListener("click", () => { $("confirm").close(); pending = null; });
  $("reason").addEventListener("input", () => { $("confirm-ok").disabled = !$("reason").value.trim(); });
  if (token) { start(); return; }
  // Auth off (evac dev, --insecure-no-auth): a request without a token is
  // answered, so there is nothing to sign in to.
  fetch("/v1/status", { headers: { "Authorization": "Bearer " + token } }) // token is "" here: is auth off?
    .then((res) => { if (res.ok) { authOff = true; start(); } }).catch(() => {});
});
