// Drill report chart: hand-written SVG, no library. One chart per drill:
// every region's traffic weight over the drill (solid step lines, 0-100),
// and for each lowered weight the share of resolvers each controller had
// told an answer without the region (dashed, 0-100%, through the measured
// 50/90/99% times and the share drained when the measurement closed).
"use strict";

// The SVG namespace, as the HTML parser assigns it (the page names no URL).
const SVG_NS = (() => { const d = document.createElement("div"); d.innerHTML = "<svg></svg>"; return d.firstChild.namespaceURI; })();
const PALETTE = ["#2f6fd6", "#cc3b3b", "#2e9d5b", "#d98e04", "#7a55c7", "#1b9aaa", "#8c564b", "#d6589f"];
const DASHES = ["6 3", "2 3", "9 3 2 3", "4 4"];

// svgEl builds an SVG element; children are nodes or text.
function svgEl(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// drainCurve returns one report's [ms after the change, share drained]
// points as a step line that never claims more than was measured: 0 from
// the change, each percentile from the time it was reached, and the share
// drained when the measurement closed (reached at some time before it).
function drainCurve(r) {
  const pts = [[0, 0]];
  let level = 0;
  for (const [t, share] of [[r.p50_ms, 0.5], [r.p90_ms, 0.9], [r.p99_ms, 0.99]]) {
    if (t === null || t === undefined) continue;
    pts.push([t, level], [t, share]);
    level = share;
  }
  const closed = new Date(r.closed_at).getTime() - new Date(r.change_at).getTime();
  const end = Math.max(closed, pts[pts.length - 1][0]);
  const final = r.population ? r.drained / r.population : 0;
  pts.push([end, level], [end, Math.max(final, level)]);
  return pts;
}

// drillChart returns the chart of drill d (GET /v1/drills/{id}) as an SVG
// element, and the legend as an HTML element.
function drillChart(d) {
  const W = 640, H = 250, ml = 44, mr = 12, mt = 12, mb = 34;
  const pw = W - ml - mr, ph = H - mt - mb;
  const timeline = d.timeline || [];
  const reports = (d.drain || []).filter((r) => r.population > 0);
  const t0 = new Date(d.started_at).getTime();
  let t1 = d.ended_at ? new Date(d.ended_at).getTime() : Date.now();
  for (const p of timeline) t1 = Math.max(t1, new Date(p.time).getTime());
  for (const r of reports) t1 = Math.max(t1, new Date(r.closed_at).getTime());
  if (t1 <= t0) t1 = t0 + 1000;
  const x = (t) => ml + ((t - t0) / (t1 - t0)) * pw;
  const y = (v) => mt + (1 - v / 100) * ph;

  const regions = [];
  for (const p of timeline) if (!regions.includes(p.region)) regions.push(p.region);
  const color = (region) => {
    const i = regions.indexOf(region);
    return PALETTE[(i < 0 ? regions.length : i) % PALETTE.length];
  };

  const chart = svgEl("svg", { id: "drill-chart", class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": "weights and drained share over drill " + d.id, "data-drill": d.id });
  // Axes and grid: 0, 50, 100 (weight, or % of resolvers drained).
  for (const v of [0, 25, 50, 75, 100]) {
    chart.append(svgEl("line", { class: "grid", x1: ml, x2: ml + pw, y1: y(v), y2: y(v) }));
    if (v % 50 === 0) chart.append(svgEl("text", { class: "tick", x: ml - 6, y: y(v) + 4, "text-anchor": "end" }, v));
  }
  const span = (t1 - t0) / 1000;
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].find((s) => span / s <= 6) || Math.ceil(span / 6);
  for (let s = 0; s <= span + 1e-9; s += step) {
    const px = x(t0 + s * 1000);
    chart.append(svgEl("line", { class: "grid", x1: px, x2: px, y1: mt, y2: mt + ph }));
    chart.append(svgEl("text", { class: "tick", x: px, y: mt + ph + 14, "text-anchor": "middle" },
      s >= 120 ? "+" + Math.round(s / 60) + "m" : "+" + Math.round(s) + "s"));
  }
  chart.append(svgEl("text", { class: "axis", x: ml + pw / 2, y: H - 4, "text-anchor": "middle" }, "time since the drill started"));
  chart.append(svgEl("text", { class: "axis", x: 10, y: mt + ph / 2, "text-anchor": "middle",
    transform: `rotate(-90 10 ${mt + ph / 2})` }, "weight · % drained"));

  // A mark at each lowered weight that was measured.
  const seenChanges = new Set();
  for (const r of reports) {
    const key = r.change_index + "/" + r.region;
    if (seenChanges.has(key)) continue;
    seenChanges.add(key);
    const px = x(new Date(r.change_at).getTime());
    chart.append(svgEl("line", { class: "change-mark", x1: px, x2: px, y1: mt, y2: mt + ph, "data-region": r.region },
      svgEl("title", {}, `${r.region} ${r.from}→${r.to}`)));
  }

  // Weights: a step line per region, each nudged a little so that regions
  // at the same weight stay visible side by side.
  for (const [ri, region] of regions.entries()) {
    const nudge = (ri - (regions.length - 1) / 2) * 2.5;
    const y = (v) => mt + (1 - v / 100) * ph + nudge;
    const pts = timeline.filter((p) => p.region === region)
      .map((p) => [new Date(p.time).getTime(), p.weight]).sort((a, b) => a[0] - b[0]);
    let dpath = `M${x(t0).toFixed(1)},${y(pts[0][1]).toFixed(1)}`;
    for (const [t, w] of pts.slice(1)) dpath += `H${x(t).toFixed(1)}V${y(w).toFixed(1)}`;
    dpath += `H${x(t1).toFixed(1)}`;
    chart.append(svgEl("path", { class: "series weight", d: dpath, stroke: color(region), "data-series": "weight",
      "data-region": region, "data-points": pts.length, "data-last": pts[pts.length - 1][1] },
      svgEl("title", {}, region + " weight")));
  }

  // Drained share: one dashed line per controller and change.
  const nodes = [];
  for (const r of reports) if (!nodes.includes(r.node)) nodes.push(r.node);
  for (const r of reports) {
    const y = (v) => mt + (1 - v / 100) * ph;
    const tc = new Date(r.change_at).getTime();
    const pts = drainCurve(r).map(([ms, share]) => [x(tc + ms), y(share * 100)]);
    const g = svgEl("g", { class: "series drain", "data-series": "drain", "data-region": r.region, "data-node": r.node,
      "data-step": r.step, "data-population": r.population, "data-drained": r.drained });
    g.append(svgEl("path", { d: "M" + pts.map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1)).join("L"),
      stroke: color(r.region), "stroke-dasharray": DASHES[nodes.indexOf(r.node) % DASHES.length] },
      svgEl("title", {}, `${r.node}: ${r.drained} of ${r.population} resolvers drained off ${r.region}`)));
    for (const [pct, ms] of [[50, r.p50_ms], [90, r.p90_ms], [99, r.p99_ms]]) {
      if (ms === null || ms === undefined) continue;
      g.append(svgEl("circle", { cx: x(tc + ms).toFixed(1), cy: y(pct).toFixed(1), r: 2.5, fill: color(r.region), "data-pct": pct },
        svgEl("title", {}, `${r.node}: ${pct}% of ${r.region}'s resolvers drained after ${(ms / 1000).toFixed(1)}s`)));
    }
    chart.append(g);
  }

  const legend = el("div", { class: "legend small" },
    ...regions.map((region) => {
      const sw = el("span", { class: "swatch" });
      sw.style.background = color(region);
      return el("span", { class: "item", "data-region": region }, sw, region);
    }),
    el("span", { class: "item muted" }, "solid: weight"),
    el("span", { class: "item muted" }, nodes.length
      ? "dashed: % of resolvers drained, per controller (" + nodes.join(", ") + ")"
      : "no drain measured yet"));
  return [chart, legend];
}

// fmtMs renders a drain time as the CLI does: "86ms", "12.3s", "never".
function fmtMs(ms) {
  if (ms === null || ms === undefined) return "never";
  return ms < 1000 ? ms + "ms" : (ms / 1000).toFixed(1) + "s";
}

// drainTable lists the drill's drain reports, per change and controller.
function drainTable(d) {
  const reports = (d.drain || []).slice().sort((a, b) => a.change_index - b.change_index || a.node.localeCompare(b.node));
  if (!reports.length) return el("p", { class: "muted small" }, "no drain report (yet): each controller reports TTL + slack after a lowered weight");
  return el("table", { class: "drain" },
    el("thead", {}, el("tr", {}, ...["step", "change", "controller", "resolvers", "drained", "50% / 90% / 99%", "past TTL"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...reports.map((r) => el("tr", { "data-node": r.node, "data-region": r.region },
      el("td", {}, r.step >= 0 ? r.step + 1 : "end"),
      el("td", { class: "nowrap" }, `${r.region} ${r.from}→${r.to}`),
      el("td", {}, r.node), el("td", { class: "num" }, r.population), el("td", { class: "num" }, r.drained),
      el("td", { class: "nowrap" }, r.population ? [r.p50_ms, r.p90_ms, r.p99_ms].map(fmtMs).join(" / ") : "no resolver asked"),
      el("td", { class: "num", title: (r.past_ttl_resolvers || []).map((l) => l.subnet + " (asked " + l.asked_after + "×)").join(", ") },
        r.past_ttl)))));
}
