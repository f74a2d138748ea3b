// A namespace's events: when each happened (the writer's clock) against when it was recorded.
"use strict";
(function () {
  const points = readData("timeline");
  const node = document.getElementById("timeline-chart");
  if (!points || !points.length || !node) return;
  points.sort((a, b) => a.recorded - b.recorded);
  new uPlot({
    width: Math.min(node.clientWidth || 720, 1100), height: 300,
    scales: {x: {time: true}, y: {time: true}},
    axes: [{label: "recorded"}, {label: "occurred", size: 90}],
    series: [{}, {label: "event", stroke: "#2b6cb0", paths: () => null, points: {show: true, size: 5}}],
  }, [points.map((p) => p.recorded), points.map((p) => p.occurred)], node);
})();
