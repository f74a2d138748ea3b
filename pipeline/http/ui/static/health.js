// The pipeline's health, polled every two seconds: each actor's lag over time.
"use strict";
on("#verify", "click", async () => {
  const shown = document.getElementById("verified");
  shown.textContent = "Verifying…";
  const report = await (await fetch("/ui/api/verify", {credentials: "same-origin"})).json();
  shown.textContent = report.ok
    ? "Verified: " + report.checked + " events, every chain whole."
    : "Broken: " + report.stream + " at position " + report.first_bad_position + ": " + report.reason;
  shown.className = "result" + (report.ok ? "" : " error");
});
(function () {
  const node = document.getElementById("health-chart");
  const first = readData("health");
  if (!node || !first) return;
  const actors = Object.keys(first.actors);
  const palette = ["#2b6cb0", "#2f855a", "#b7791f", "#805ad5", "#c53030", "#319795", "#4a5568"];
  const series = [[], ...actors.map(() => [])];
  const add = (stats) => {
    series[0].push(Date.now() / 1000);
    actors.forEach((name, i) => series[i + 1].push((stats.actors[name] || {}).lag || 0));
    if (series[0].length > 300) series.forEach((s) => s.shift());
  };
  add(first);
  const chart = new uPlot({
    width: Math.min(node.clientWidth || 720, 1100), height: 220,
    scales: {x: {time: true, range: (u, min, max) => [max - 120, max]}},  // the last two minutes
    axes: [{}, {label: "lag (events)"}],
    series: [{}, ...actors.map((name, i) => ({label: name, stroke: palette[i % palette.length], width: 2}))],
  }, series, node);
  setInterval(async () => {
    const response = await fetch("/ui/api/health", {credentials: "same-origin"});
    if (!response.ok) return;
    add(await response.json());
    chart.setData(series);
  }, 2000);
})();
