"""The live view's script, served as /assets/surge-live.js.

It opens an ``EventSource`` on /api/live/stream. The first event, ``snapshot``,
holds the run so far and draws the charts with ``Plotly.react``; each ``second``
event appends one point to every trace with ``Plotly.extendTraces`` (no reload,
no redraw of the whole run); ``start`` (the next run of a ``--repeat``) clears
them; ``finish`` shows the run's outcome; ``bye`` (the server is stopping) closes
the stream so the browser does not retry a server that is gone. Text from the
run (its title) is set with ``textContent`` only.
"""

from __future__ import annotations

LIVE_JS = r"""
(function () {
  "use strict";

  // chart id -> traces: [label, row field, color, dash, kind]
  var CHARTS = {
    throughput: { title: "Throughput", y: "per second", traces: [
      ["requests/s", "requests", "#1f77b4", "solid"],
      ["iterations started/s", "started", "#9467bd", "dot"],
      ["target rate", "target_rate", "#7f7f7f", "dash"],
      ["dropped/s", "dropped", "#d62728", "dot"]] },
    latency: { title: "Latency (solid) vs service time (dotted)", y: "ms", traces: [
      ["latency p50", "p50", "#1f77b4", "solid"], ["latency p95", "p95", "#ff7f0e", "solid"],
      ["latency p99", "p99", "#d62728", "solid"], ["service p50", "service_p50", "#1f77b4", "dot"],
      ["service p95", "service_p95", "#ff7f0e", "dot"], ["service p99", "service_p99", "#d62728", "dot"]] },
    errors: { title: "Errors", y: "per second", traces: [["errors/s", "errors", "#d62728", "solid", "bar"]] },
    vus: { title: "Virtual users", y: "VUs", traces: [["VUs", "vus", "#2ca02c", "solid"]] }
  };
  var CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  var state = { run: null, seconds: 0, requests: 0, errors: 0, finish: null };

  function el(id) { return document.getElementById("live-" + id); }

  function layout(c) {
    return {
      title: { text: c.title, x: 0, font: { size: 14 } }, height: 300,
      margin: { l: 55, r: 15, t: 40, b: 80 }, hovermode: "x unified",
      legend: { orientation: "h", y: -0.3, yanchor: "top" },
      xaxis: { title: { text: "seconds since start", standoff: 4 }, zeroline: false },
      yaxis: { title: { text: c.y }, rangemode: "tozero" },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)"
    };
  }

  function trace(t, rows) {
    var tr = { name: t[0], x: rows.map(function (r) { return r.t + 1; }),
               y: rows.map(function (r) { return r[t[1]]; }) };
    if (t[4] === "bar") { tr.type = "bar"; tr.marker = { color: t[2] }; }
    else { tr.type = "scatter"; tr.mode = "lines"; tr.line = { color: t[2], dash: t[3], width: 1.5 }; }
    return tr;
  }

  function draw(rows) {
    Object.keys(CHARTS).forEach(function (id) {
      var c = CHARTS[id];
      Plotly.react(el(id), c.traces.map(function (t) { return trace(t, rows); }), layout(c), CONFIG);
    });
  }

  function extend(row) {
    Object.keys(CHARTS).forEach(function (id) {
      var ts = CHARTS[id].traces;
      Plotly.extendTraces(el(id), {
        x: ts.map(function () { return [row.t + 1]; }),
        y: ts.map(function (t) { return [row[t[1]]]; })
      }, ts.map(function (_, i) { return i; }));
    });
  }

  function count(rows) {
    rows.forEach(function (r) { state.requests += r.requests || 0; state.errors += r.errors || 0; });
    state.seconds += rows.length;
  }

  function status(text) {
    var s = document.getElementById("live-status");
    if (s) s.textContent = text;
  }

  function describe() {
    if (!state.run) return "waiting for the run to start ...";
    var r = state.run, head = (r.title || "run") + (r.run_id ? " (" + r.run_id + ")" : "");
    var nums = state.requests.toLocaleString() + " requests, " + state.errors.toLocaleString() + " errors";
    if (state.finish) {
      return head + ": " + (state.finish.status || "finished") + " after " + state.seconds + " s, " + nums;
    }
    var planned = r.planned_s ? " / " + Math.round(r.planned_s) + " s" : " s";
    return head + ": running, " + state.seconds + planned + ", " + nums;
  }

  function reset(run) {
    state = { run: run, seconds: 0, requests: 0, errors: 0, finish: null };
  }

  function start() {
    if (!window.Plotly) { status("the chart library did not load"); return; }
    draw([]);
    var es = new EventSource("/api/live/stream");
    es.addEventListener("snapshot", function (ev) {
      var d = JSON.parse(ev.data);
      reset(d.run);
      count(d.rows);
      state.finish = d.finish;
      draw(d.rows);
      status(describe());
    });
    es.addEventListener("start", function (ev) {
      reset(JSON.parse(ev.data));
      draw([]);
      status(describe());
    });
    es.addEventListener("second", function (ev) {
      var row = JSON.parse(ev.data);
      count([row]);
      extend(row);
      status(describe());
    });
    es.addEventListener("finish", function (ev) {
      state.finish = JSON.parse(ev.data);
      status(describe());
    });
    es.addEventListener("bye", function () {
      es.close();
      status(describe() + " (the dashboard has stopped)");
    });
    es.onerror = function () {
      if (es.readyState !== EventSource.CLOSED) status(describe() + " (connection lost, retrying ...)");
    };
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
"""
