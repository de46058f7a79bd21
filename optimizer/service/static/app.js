// The web view of apo serve. Every datum comes from the JSON API, with the token; every text from a run goes
// into the page through textContent (never parsed as markup), so prompts, task names and errors stay text.
(function () {
  "use strict";
  var KEY = "apo-token";
  var FINAL = { complete: 1, partial: 1, failed: 1, cancelled: 1 };
  var main = document.getElementById("main");
  var statusLine = document.getElementById("status");
  var body = document.body;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function say(text) { statusLine.textContent = text || ""; }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function fmt(x, digits) { return typeof x === "number" ? x.toFixed(digits === undefined ? 3 : digits) : "–"; }

  // The token: from #token=... (then removed from the address bar and history), else sessionStorage.
  function token() {
    var m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(KEY) || "";
  }
  function auth(extra) {
    var h = { Authorization: "Bearer " + token() };
    Object.keys(extra || {}).forEach(function (k) { h[k] = extra[k]; });
    return h;
  }
  function login(why) {
    clear(main);
    body.setAttribute("data-login", "1");
    var input = el("input", { type: "password", id: "token", size: "50", autocomplete: "off",
                              placeholder: "the token in runs/service.token" });
    var form = el("form", {}, [el("label", { for: "token", text: "Token " }), input, " ",
                               el("button", { type: "submit", text: "Open" })]);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      sessionStorage.setItem(KEY, input.value.trim());
      location.reload();
    });
    main.appendChild(form);
    say(why || "");
  }
  function Unauthorized() {}
  async function api(path, asText) {
    if (!token()) { login("Enter the server's token."); throw new Unauthorized(); }
    var resp = await fetch(path, { headers: auth(), cache: "no-store" });
    if (resp.status === 401) { sessionStorage.removeItem(KEY); login("Wrong token."); throw new Unauthorized(); }
    if (!resp.ok) {
      var detail = await resp.text();
      try { detail = JSON.parse(detail).detail; } catch (e) { /* plain text */ }
      throw new Error(path + ": " + resp.status + " " + detail);
    }
    return asText ? resp.text() : resp.json();
  }
  function failed(e) { if (!(e instanceof Unauthorized)) say(String(e && e.message || e)); }

  function stateCell(state) { return el("td", { class: "state-" + state, text: state }); }
  function progressText(p) {
    if (!p) return "–";
    var splits = Object.keys(p.by_split || {}).map(function (s) { return s + " " + p.by_split[s]; });
    return p.scores + " scores" + (splits.length ? " (" + splits.join(", ") + ")" : "") + ", " +
      p.candidates + " candidates";
  }
  function table(id, heads) {
    var tbody = el("tbody");
    var t = el("table", { id: id }, [el("thead", {}, [el("tr", {}, heads.map(function (h) {
      return el("th", { text: h });
    }))]), tbody]);
    return { table: t, tbody: tbody };
  }

  // ---- the jobs --------------------------------------------------------------------------------------------
  function jobsPage() {
    var views = {};  // id -> the last GET /jobs/{id} (an ended job's is not fetched again)
    var t = table("jobs", ["job", "task", "state", "progress", "verdict", "created"]);
    main.appendChild(el("h1", { text: "Jobs" }));
    main.appendChild(t.table);
    var busy = false;
    var rounds = 0;
    async function refresh() {
      if (busy) return;
      busy = true;
      try {
        var jobs = await api("/jobs");
        for (var i = 0; i < jobs.length; i++) {
          var j = jobs[i], seen = views[j.id];
          if (!seen || seen.state !== j.state || !FINAL[j.state]) views[j.id] = await api("/jobs/" + encodeURIComponent(j.id));
        }
        clear(t.tbody);
        jobs.slice().reverse().forEach(function (j) {
          var v = views[j.id] || j;
          var link = el("a", { href: "/ui/jobs/" + encodeURIComponent(j.id), text: j.id });
          t.tbody.appendChild(el("tr", { "data-job": j.id, "data-state": v.state }, [
            el("td", {}, [link]), el("td", { class: "task", text: v.task }), stateCell(v.state),
            el("td", { class: "progress", "data-scores": String(v.progress ? v.progress.scores : 0),
                       text: progressText(v.progress) }),
            el("td", { text: v.verdict || (v.error ? "error: " + v.error : "") }),
            el("td", { text: new Date(v.created * 1000).toLocaleString() })]));
        });
        if (!jobs.length) t.tbody.appendChild(el("tr", {}, [el("td", { colspan: "6", text: "no jobs yet" })]));
        say("");
        body.setAttribute("data-ready", String(++rounds));
      } catch (e) { failed(e); } finally { busy = false; }
    }
    refresh();
    setInterval(refresh, 2000);
  }

  // ---- one job ----------------------------------------------------------------------------------------------
  function jobPage(id) {
    var path = "/jobs/" + encodeURIComponent(id);
    var cands = [], byId = {}, dev = {};  // dev: prompt_hash -> {sum, n} of dev accuracy from the score events
    var result = null, lastEvent = 0, ended = false, pending = false;
    var info = el("dl", { id: "info" });
    var usage = table("usage", ["role", "calls", "cache hits", "prompt tokens", "completion tokens", "cost $"]);
    var ct = table("candidates", ["id", "parent", "origin", "round", "dev acc", "dev n", "prompt"]);
    var done = el("section", { id: "result" });
    main.appendChild(el("h1", { text: "Job " + id }));
    [info, el("h2", { text: "Usage" }), usage.table, done, el("h2", { text: "Candidates" }), ct.table]
      .forEach(function (n) { main.appendChild(n); });

    function showJob(v) {
      clear(info);
      var rows = [["task", v.task], ["state", v.state], ["run", v.run_id || "–"], ["progress", progressText(v.progress)],
        ["calls", String(v.calls)], ["tokens", String(v.tokens)], ["cost", "$" + fmt(v.cost_usd, 4)]];
      if (v.status) rows.push(["status", v.status]);
      if (v.verdict) rows.push(["verdict", v.verdict]);
      if (v.error) rows.push(["error", v.error]);
      rows.forEach(function (r) {
        info.appendChild(el("dt", { text: r[0] }));
        info.appendChild(el("dd", { class: r[0] === "state" ? "state-" + r[1] : "", "data-field": r[0], text: r[1] }));
      });
      showUsage(v.usage || {});
      body.setAttribute("data-state", v.state);
      body.setAttribute("data-scores", String(v.progress ? v.progress.scores : 0));
    }
    function showUsage(u) {
      clear(usage.tbody);
      Object.keys(u).forEach(function (role) {
        var r = u[role] || {};
        usage.tbody.appendChild(el("tr", {}, [el("td", { text: role })].concat(
          [r.calls, r.cache_hits, r.prompt_tokens, r.completion_tokens].map(function (x) {
            return el("td", { class: "num", text: String(x === undefined ? "–" : x) });
          }), [el("td", { class: "num", text: fmt(r.cost_usd, 4) })])));
      });
    }
    function render() {
      pending = false;
      clear(ct.tbody);
      cands.forEach(function (c) {
        var d = c.dev || (dev[c.prompt_hash] ? { acc: dev[c.prompt_hash].sum / dev[c.prompt_hash].n,
                                                   n: dev[c.prompt_hash].n } : null);
        var parent = c.parent && byId[c.parent] ? el("a", { href: "#cand-" + c.parent, text: c.parent })
                                                : el("span", { text: c.parent || "" });
        ct.tbody.appendChild(el("tr", { id: "cand-" + c.id, "data-candidate": c.id }, [
          el("td", { text: c.id }), el("td", {}, [parent]), el("td", { text: c.origin || "" }),
          el("td", { class: "num", text: String(c.round || 0) }),
          el("td", { class: "num", text: d ? fmt(d.acc) : "–" }), el("td", { class: "num", text: d ? String(d.n) : "–" }),
          el("td", { class: "text", text: c.text })]));
      });
      body.setAttribute("data-candidates", String(cands.length));
      body.setAttribute("data-events", String(lastEvent));
    }
    function later() { if (!pending) { pending = true; setTimeout(render, 150); } }
    function addCandidate(c) {
      if (byId[c.id]) { Object.assign(byId[c.id], c); return; }
      byId[c.id] = c;
      cands.push(c);
    }
    function onEvent(e) {
      if (e.type === "candidate") addCandidate({ id: e.id, parent: e.parent, origin: e.origin, round: e.round,
                                                 text: e.text, prompt_hash: e.prompt_hash });
      else if (e.type === "score" && e.split === "dev" && typeof e.acc === "number") {
        var s = dev[e.prompt_hash] || (dev[e.prompt_hash] = { sum: 0, n: 0 });
        s.sum += e.acc; s.n += 1;
      } else if (e.type === "usage" && e.usage) showUsage(e.usage);
      later();
    }
    function showResult(r) {
      clear(done);
      done.appendChild(el("h2", { text: "Result" }));
      var best = r.best || {};
      done.appendChild(el("p", { text: "status " + r.status + (r.stop_reason ? " (" + r.stop_reason + ")" : "") +
        "; verdict: " + ((r.selection || {}).verdict || "–") + "; shipped: " + ((r.selection || {}).shipped || best.id || "–") }));
      done.appendChild(el("div", { class: "best", id: "best", text: best.text || "" }));
      (r.candidates || []).forEach(function (c) { addCandidate(c); });
      body.setAttribute("data-result", r.status || "1");
      render();
    }
    async function poll() {
      try {
        var v = await api(path);
        showJob(v);
        if (FINAL[v.state] && !result && v.status) { result = await api(path + "/result"); showResult(result); }
        if (FINAL[v.state] && (result || !v.status)) return;
      } catch (e) { failed(e); }
      setTimeout(poll, 2000);
    }
    function block(text) {  // one server-sent event
      var ev = "message", data = [], eid = null;
      text.split("\n").forEach(function (line) {
        if (!line || line.charAt(0) === ":") return;
        var i = line.indexOf(":"), field = i < 0 ? line : line.slice(0, i);
        var value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "event") ev = value;
        else if (field === "data") data.push(value);
        else if (field === "id") eid = value;
      });
      if (ev === "end") { ended = true; return; }
      if (!data.length) return;
      if (eid !== null && /^\d+$/.test(eid)) lastEvent = Number(eid);
      try { onEvent(JSON.parse(data.join("\n"))); } catch (e) { /* a line that is not JSON: skipped */ }
    }
    async function stream() {  // fetch + a ReadableStream reader: the browser event source cannot send the token
      var wait = 500;
      while (!ended) {
        try {
          var headers = auth({ Accept: "text/event-stream" });
          if (lastEvent) headers["Last-Event-ID"] = String(lastEvent);
          var resp = await fetch(path + "/events", { headers: headers, cache: "no-store" });
          if (resp.status === 401) { login("Wrong token."); return; }
          if (!resp.ok) throw new Error("events: " + resp.status);
          var reader = resp.body.getReader(), decoder = new TextDecoder(), buf = "";
          for (;;) {
            var chunk = await reader.read();
            if (chunk.done) break;
            buf = (buf + decoder.decode(chunk.value, { stream: true })).replace(/\r\n/g, "\n");
            var at;
            while ((at = buf.indexOf("\n\n")) >= 0) { block(buf.slice(0, at)); buf = buf.slice(at + 2); }
            wait = 500;
          }
        } catch (e) { failed(e); }
        if (!ended) { await sleep(wait); wait = Math.min(wait * 2, 10000); }  // reconnect after lastEvent
      }
      render();
    }
    poll();
    stream();
  }

  // ---- the leaderboard ---------------------------------------------------------------------------------------
  async function boardPage() {
    main.appendChild(el("h1", { text: "Leaderboard" }));
    try {
      var html = await api("/leaderboard?format=html", true);
      // The report escapes every run text and its own CSP allows its one script by hash and nothing else; the
      // sandbox (scripts, no same origin) also keeps that script away from this page, its token and the API.
      var frame = el("iframe", { id: "leaderboard", title: "leaderboard", sandbox: "allow-scripts" });
      frame.srcdoc = html;
      main.appendChild(frame);
      body.setAttribute("data-leaderboard", String(html.length));
    } catch (e) { failed(e); }
  }

  document.getElementById("forget").addEventListener("click", function (ev) {
    ev.preventDefault();
    sessionStorage.removeItem(KEY);
    login("Token forgotten.");
  });
  var m = /^\/ui\/jobs\/([^/]+)\/?$/.exec(location.pathname);
  if (!token()) login("Enter the server's token (or open this page with #token=... in its address).");
  else if (m) jobPage(decodeURIComponent(m[1]));
  else if (/^\/ui\/leaderboard\/?$/.test(location.pathname)) boardPage();
  else jobsPage();
})();
