// mwan dashboard: polls mwand's JSON API (docs/dashboard.md) and draws
// each WAN's last hour. No framework; every value from the API goes in
// through textContent, never as markup.
"use strict";
(function () {
  var POLL_MS = 1500, HOUR = 3600, BUCKET = 10, W = HOUR / BUCKET, H = 100;
  var SVG = "http://www.w3.org/2000/svg";
  var token = null, since = 0, clockOffset = 0, states = [];
  var series = {};   // interface -> {t: [state, latency, loss]}
  var seenEvents = {};
  var cards = {}, policyCards = {}, wanNames = [];

  var m = /token=([^&]+)/.exec(location.hash);
  if (m) {
    token = decodeURIComponent(m[1]);
    try { sessionStorage.setItem("mwan-token", token); } catch (e) { /* private mode */ }
    history.replaceState(null, "", location.pathname + location.search);
  } else {
    try { token = sessionStorage.getItem("mwan-token"); } catch (e) { token = null; }
  }

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c != null) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }

  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  function duration(s) {
    var d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, mi = Math.floor(s / 60) % 60, se = s % 60;
    function p(n) { return (n < 10 ? "0" : "") + n; }
    if (d) return d + "d" + p(h) + "h";
    if (h) return h + "h" + p(mi) + "m";
    if (mi) return mi + "m" + p(se) + "s";
    return se + "s";
  }

  function fig(v, unit) { return v == null ? "–" : v.toFixed(1) + unit; }

  function show(id, text) {
    var p = $(id);
    p.textContent = text;
    p.hidden = !text;
  }

  function api(method, path, body) {
    var headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token && method === "POST") headers["X-Mwan-Token"] = token;
    return fetch(path, {
      method: method, headers: headers, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.text().then(function (t) {
        var j = null;
        try { j = JSON.parse(t); } catch (e) { /* not JSON: the reason is the text */ }
        if (!r.ok) throw new Error((j && j.error) || t || r.status + " " + r.statusText);
        return j;
      });
    });
  }

  // A write: confirm, send, show what mwand answered.
  function act(question, path, body) {
    if (!window.confirm(question)) return;
    show("result", "");
    api("POST", path, body).then(function (j) {
      show("error", "");
      show("result", (j && j.message) || "done");
      tick = 0;
      poll();
    }, function (e) {
      show("error", e.message);
    });
  }

  function wanCard(name) {
    var c = cards[name];
    if (c) return c;
    c = { name: name };
    c.badge = el("span", { "class": "badge" });
    c.age = el("span", { "class": "muted" });
    c.device = el("span", { "class": "muted" });
    c.reason = el("div", { "class": "muted" });
    c.figs = {};
    var dl = el("dl", { "class": "figures" });
    [["latency", "latency"], ["jitter", "jitter"], ["loss", "loss"], ["score", "score"]].forEach(function (f) {
      c.figs[f[0]] = el("dd", { "data-fig": f[0] });
      dl.appendChild(el("div", null, el("dt", null, f[1]), c.figs[f[0]]));
    });
    c.graph = svg("svg", { "class": "graph", viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img" });
    c.graph.setAttribute("aria-label", name + ": latency and loss, last hour");
    var restart = el("button", { type: "button" }, "Restart tracker");
    restart.onclick = function () {
      act("Restart the tracker of " + name + "?", "api/restart", { interface: name });
    };
    var force = el("button", { type: "button" }, "Use only this uplink");
    force.onclick = function () {
      act("Send every policy's traffic over " + name + " until cleared?", "api/override", { interface: name });
    };
    c.root = el("article", { "class": "card wan", "data-wan": name },
      el("div", { "class": "card-head" }, el("h3", null, name), c.badge, c.age, c.device),
      c.reason, dl, c.graph,
      el("div", { "class": "legend" }, el("span", { "class": "l-lat" }, "— latency"),
        el("span", { "class": "l-loss" }, "▮ loss"), el("span", null, "┆ state change"), el("span", null, "last hour →")),
      el("div", { "class": "row" }, restart, force));
    $("wans").appendChild(c.root);
    cards[name] = c;
    return c;
  }

  function renderWan(i) {
    var c = wanCard(i.name);
    c.badge.textContent = i.state;
    c.badge.className = "badge s-" + i.state;
    c.root.setAttribute("data-state", i.state);
    c.age.textContent = "for " + duration(i.state_age_s);
    c.device.textContent = i.device ? "on " + i.device : "no device";
    c.reason.textContent = i.reason || "";
    c.figs.latency.textContent = fig(i.latency_ms, " ms");
    c.figs.jitter.textContent = fig(i.jitter_ms, " ms");
    c.figs.loss.textContent = fig(i.loss_pct, " %");
    c.figs.score.textContent = fig(i.score, "");
  }

  function policyCard(name) {
    var c = policyCards[name];
    if (c) return c;
    c = { name: name, wans: "" };
    c.shares = el("div");
    c.explain = el("ul", { "class": "explain" });
    c.select = el("select", { "aria-label": "uplink for " + name });
    var set = el("button", { type: "button" }, "Override");
    set.onclick = function () {
      var w = c.select.value;
      act("Send policy " + name + " over " + w + " only, until cleared?", "api/override", { interface: w, policy: name });
    };
    var clear = el("button", { type: "button" }, "Clear");
    clear.onclick = function () {
      act("Clear the override of policy " + name + "?", "api/override/clear", { policy: name });
    };
    c.override = el("div", { "class": "muted" });
    c.root = el("article", { "class": "card policy", "data-policy": name },
      el("div", { "class": "card-head" }, el("h3", null, name)),
      c.shares, c.override, c.explain, el("div", { "class": "row" }, c.select, set, clear));
    $("policies").appendChild(c.root);
    policyCards[name] = c;
    return c;
  }

  function renderPolicy(p, overrides) {
    var c = policyCard(p.name);
    c.shares.textContent = "";
    p.active.forEach(function (a) {
      var bar = el("span");
      bar.style.width = Math.max(0, Math.min(100, a.share_pct)) + "%";
      c.shares.appendChild(el("div", { "class": "share", "data-wan": a.interface },
        el("span", null, a.interface), el("span", { "class": "bar" }, bar),
        el("span", { "class": "muted" }, a.share_pct.toFixed(0) + " %")));
    });
    if (!p.active.length) c.shares.appendChild(el("div", { "class": "muted" }, "no usable uplink: " + (p.last_resort || "unreachable")));
    var o = overrides.filter(function (o) { return o.policy === p.name || o.policy == null; })[0];
    c.override.textContent = o ? "overridden onto " + o.interface + (o.policy ? "" : " (all policies)") : "";
    if (c.wans !== wanNames.join(" ")) {
      c.wans = wanNames.join(" ");
      c.select.textContent = "";
      wanNames.forEach(function (w) { c.select.appendChild(el("option", { value: w }, w)); });
    }
  }

  function renderStatus(s) {
    show("error", "");
    $("summary").textContent = "up " + duration(s.uptime_s) + " · " + s.config +
      (s.dataplane_error ? " · data plane: " + s.dataplane_error : "");
    wanNames = s.interfaces.map(function (i) { return i.name; });
    s.interfaces.forEach(renderWan);
    var overrides = s.overrides && s.overrides.length ? s.overrides : (s.override ? [s.override] : []);
    s.policies.forEach(function (p) { renderPolicy(p, overrides); });
    prune(cards, wanNames);
    prune(policyCards, s.policies.map(function (p) { return p.name; }));
  }

  function prune(map, keep) {
    Object.keys(map).forEach(function (k) {
      if (keep.indexOf(k) < 0) { map[k].root.remove(); delete map[k]; }
    });
  }

  function renderExplain(j) {
    (j.explain || []).forEach(function (e) {
      var c = policyCards[e.policy];
      if (!c) return;
      c.explain.textContent = "";
      e.lines.forEach(function (l) { c.explain.appendChild(el("li", null, l)); });
    });
  }

  function clock(t) {
    var d = new Date((t + clockOffset) * 1000);
    return d.toLocaleTimeString();
  }

  function addHistory(h) {
    states = h.states || states;
    if (h.reset) {
      // mwand's clock restarted (a reboot): what we hold is another timeline.
      series = {};
      seenEvents = {};
      $("events").textContent = "";
    }
    clockOffset = Date.now() / 1000 - h.next;
    h.wans.forEach(function (w) {
      var s = series[w.name] || (series[w.name] = {});
      if (w.t0 == null) return;
      for (var k = 0; k < w.state.length; k++) {
        s[w.t0 + k] = [w.state[k], w.latency_ms[k], w.loss_pct[k]];
      }
      for (var t in s) if (t < h.next - HOUR) delete s[t];
    });
    var list = $("events");
    h.events.forEach(function (e) {
      // seq restarts with mwand; with the time it names one event.
      var key = e.seq + "@" + e.at_ms;
      if (seenEvents[key]) return;
      seenEvents[key] = true;
      var li = el("li", { "data-kind": e.kind },
        el("time", null, clock(e.t)), el("strong", null, e.subject + " "),
        e.text, e.reason ? el("div", { "class": "muted" }, e.reason) : null);
      list.insertBefore(li, list.firstChild);
    });
    while (list.children.length > 200) list.removeChild(list.lastChild);
    since = h.next;
    Object.keys(cards).forEach(function (n) { draw(cards[n], series[n] || {}, h.next); });
  }

  // Ten-second buckets over the last hour: mean latency, worst loss, a
  // dashed line where the state changed.
  function draw(c, s, now) {
    var start = now - HOUR + 1, lat = [], loss = [], marks = [], prev = null, max = 0;
    for (var b = 0; b < W; b++) {
      var sum = 0, n = 0, worst = null;
      for (var t = start + b * BUCKET; t < start + (b + 1) * BUCKET; t++) {
        var p = s[t];
        if (!p) continue;
        if (p[1] != null) { sum += p[1]; n++; }
        if (p[2] != null) worst = Math.max(worst || 0, p[2]);
        if (p[0] != null) {
          if (prev != null && p[0] !== prev) marks.push([b, states[p[0]] || "unknown"]);
          prev = p[0];
        }
      }
      lat.push(n ? sum / n : null);
      loss.push(worst);
      if (n) max = Math.max(max, sum / n);
    }
    var top = niceMax(max);
    var g = c.graph;
    g.textContent = "";
    g.appendChild(svg("line", { "class": "axis", x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }));
    var lossPath = "";
    loss.forEach(function (v, x) {
      if (v) lossPath += "M" + x + " " + H + "v" + (-v * (H - 2) / 100).toFixed(1) + "h1v" + (v * (H - 2) / 100).toFixed(1) + "z";
    });
    if (lossPath) g.appendChild(svg("path", { "class": "loss", d: lossPath }));
    var d = "", pen = false;
    lat.forEach(function (v, x) {
      if (v == null) { pen = false; return; }
      d += (pen ? "L" : "M") + x + " " + (H - 2 - v / top * (H - 14)).toFixed(1);
      pen = true;
    });
    if (d) g.appendChild(svg("path", { "class": "lat", d: d, "vector-effect": "non-scaling-stroke" }));
    marks.forEach(function (mk) {
      g.appendChild(svg("line", { "class": "mark s-" + mk[1], x1: mk[0], y1: 0, x2: mk[0], y2: H, "vector-effect": "non-scaling-stroke" }));
    });
    var label = svg("text", { x: 2, y: 10 });
    label.textContent = top + " ms";
    g.appendChild(label);
    g.setAttribute("data-points", Object.keys(s).length);
    g.setAttribute("data-marks", marks.length);
  }

  function niceMax(v) {
    var steps = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
    for (var i = 0; i < steps.length; i++) if (v <= steps[i]) return steps[i];
    return Math.ceil(v / 10000) * 10000;
  }

  var busy = false, tick = 0;
  function poll() {
    if (busy) return;
    busy = true;
    var explain = tick++ % 4 === 0;
    Promise.all([
      api("GET", "api/status").then(renderStatus).then(function () {
        return explain ? api("GET", "api/explain").then(renderExplain) : null;
      }),
      api("GET", "api/history?since=" + since).then(addHistory)
    ]).catch(function (e) {
      show("error", "mwand does not answer: " + e.message);
    }).then(function () { busy = false; });
  }

  $("reload").onclick = function () { act("Reload mwand's configuration?", "api/reload", {}); };
  $("clear-all").onclick = function () { act("Clear every override?", "api/override/clear", {}); };
  poll();
  setInterval(poll, POLL_MS);
})();
