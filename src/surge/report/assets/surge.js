/* surge report and dashboard runtime (no dependencies but plotly.js).
 *
 * - Loads plotly.js: already on the page (dashboard), or embedded gzip-compressed
 *   and base64-encoded in the script element #surge-plotly-gz (the self-contained
 *   report), decompressed with the browser's DecompressionStream.
 * - Renders every div.surge-chart from the figure JSON in its data-figure attribute.
 * - Makes every table.sortable sortable by clicking its headers (numbers sort by
 *   the cell's data-sort value).
 * window.surge.render(root) does both again for content added later.
 */
(function () {
  "use strict";

  function showError(message) {
    var box = document.getElementById("surge-js-error");
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  }

  function b64ToBytes(b64) {
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function loadPlotly() {
    if (window.Plotly) return Promise.resolve();
    var el = document.getElementById("surge-plotly-gz");
    if (!el) return Promise.resolve();
    if (typeof DecompressionStream === "undefined") {
      return Promise.reject(new Error("this browser cannot decompress the embedded chart library " +
        "(no DecompressionStream): open the report in a current Chrome, Edge, Firefox or Safari"));
    }
    var stream = new Blob([b64ToBytes(el.textContent.trim())]).stream()
      .pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(function (code) {
      var s = document.createElement("script");
      s.textContent = code;
      document.head.appendChild(s);
    });
  }

  function renderCharts(root) {
    if (!window.Plotly) return;
    var charts = (root || document).querySelectorAll(".surge-chart");
    Array.prototype.forEach.call(charts, function (el) {
      var fig;
      try {
        fig = JSON.parse(el.getAttribute("data-figure"));
      } catch (e) {
        el.textContent = "this chart's data is unreadable";
        return;
      }
      Plotly.react(el, fig.data || [], fig.layout || {},
        { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] });
    });
  }

  function cellKey(row, col) {
    var cell = row.cells[col];
    if (!cell) return "";
    var v = cell.getAttribute("data-sort");
    if (v !== null && v !== "" && !isNaN(Number(v))) return Number(v);
    return cell.textContent.trim().toLowerCase();
  }

  function sortBy(table, col, th) {
    var body = table.tBodies[0];
    if (!body) return;
    var asc = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellKey(a, col), y = cellKey(b, col);
      var bothNum = typeof x === "number" && typeof y === "number";
      var c = bothNum ? x - y : String(x).localeCompare(String(y));
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function makeSortable(root) {
    var tables = (root || document).querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, function (table) {
      if (!table.tHead || table.getAttribute("data-sortable-ready")) return;
      table.setAttribute("data-sortable-ready", "1");
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
        th.tabIndex = 0;
        th.title = "sort";
        th.addEventListener("click", function () { sortBy(table, col, th); });
        th.addEventListener("keydown", function (ev) {
          if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortBy(table, col, th); }
        });
      });
    });
  }

  function render(root) {
    makeSortable(root);
    renderCharts(root);
  }

  window.surge = { render: render, loadPlotly: loadPlotly };

  function start() {
    makeSortable(document);
    loadPlotly().then(function () { renderCharts(document); }, function (err) { showError(String(err.message || err)); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
