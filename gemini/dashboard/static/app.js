// Draws the policy page's charts from the JSON in #chart-data. No inline scripts, no eval.
(function () {
  "use strict";
  var holder = document.getElementById("chart-data");
  if (!holder || typeof Plotly === "undefined") { return; }
  var data = JSON.parse(holder.textContent);
  // plotly interprets a few HTML-like tags in text; show every value as plain text
  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  var layoutBase = {
    margin: { l: 50, r: 20, t: 10, b: 40 },
    height: 280,
    hovermode: "closest",
    legend: { orientation: "h", y: -0.2 },
    xaxis: { type: "date", range: data.range },
    paper_bgcolor: "#fff", plot_bgcolor: "#fafafa"
  };
  var config = { displayModeBar: false, responsive: true };
  function layout(extra) { return Object.assign({}, layoutBase, extra || {}); }

  var c = data.capacity;
  var traces = [
    { x: c.t, y: c.min, name: "min", mode: "lines", line: { width: 0 }, hoverinfo: "skip",
      showlegend: false },
    { x: c.t, y: c.max, name: "min–max", mode: "lines", fill: "tonexty",
      fillcolor: "rgba(120,120,120,0.12)", line: { width: 0 }, hoverinfo: "skip" },
    { x: c.t, y: c.current, name: "current", mode: "lines", line: { shape: "hv", color: "#1f77b4" } },
    { x: c.t, y: c.desired, name: "desired", mode: "lines",
      line: { shape: "hv", color: "#d62728", dash: "dot" } }
  ];
  data.twins.forEach(function (t) {
    traces.push({ x: t.t, y: t.desired, name: esc(t.policy + " (" + t.mode + ")"), mode: "lines",
      line: { shape: "hv", dash: "dash", color: "#9467bd" } });
  });
  if (data.events.length) {
    traces.push({
      x: data.events.map(function (e) { return e.t; }),
      y: data.events.map(function (e) { return e.desired; }),
      text: data.events.map(function (e) {
        return esc(e.current + " → " + e.desired + (e.applied ? " applied" : " not applied") +
          ": " + e.reasons.join(", "));
      }),
      name: "decisions", mode: "markers", hoverinfo: "text+x",
      marker: { size: 8, symbol: data.events.map(function (e) {
        return e.applied ? "circle" : "circle-open"; }), color: "#d62728" }
    });
  }
  // keep the capacity readable when maxReplicas is far above what is used: clip the band
  var used = [].concat(c.current, c.desired, c.min);
  data.twins.forEach(function (t) { used = used.concat(t.desired); });
  var top = Math.max.apply(null, used.concat([1]));
  var maxBand = Math.max.apply(null, c.max.concat([0]));
  var yTop = maxBand <= top * 1.5 ? maxBand * 1.08 + 0.5 : top * 1.3 + 1;
  Plotly.newPlot("chart-capacity", traces, layout({ yaxis: { title: { text: "replicas" },
    range: [0, yTop] } }), config);

  data.metrics.forEach(function (m, i) {
    var el = document.getElementById("chart-metric-" + i);
    if (!el) { return; }
    Plotly.newPlot(el, [
      { x: m.t, y: m.value, name: esc(m.name), mode: "lines+markers", marker: { size: 3 },
        connectgaps: false },
      { x: m.t, y: m.target, name: "target", mode: "lines", line: { dash: "dash", color: "#2ca02c" } }
    ], layout({ yaxis: { rangemode: "tozero" } }), config);
  });
  document.body.setAttribute("data-charts", "ready");
})();
