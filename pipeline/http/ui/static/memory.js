// A memory's decay curve: retrievability since its last review, with today marked.
"use strict";
(function () {
  const curve = readData("decay");
  const node = document.getElementById("decay-chart");
  if (!curve || !node) return;
  const now = curve.days.map((d) => (Math.abs(d - curve.now) <= curve.days[1] / 2 ? 1 : null));
  new uPlot({
    width: Math.min(node.clientWidth || 720, 900), height: 240,
    scales: {x: {time: false}, y: {range: [0, 1]}},
    axes: [{label: "days since its last review"}, {label: "retrievability"}],
    series: [{}, {label: "retrievability", stroke: "#2b6cb0", width: 2},
             {label: "now", stroke: "#c53030", points: {show: true, size: 8}, paths: () => null}],
  }, [curve.days, curve.retrievability, now], node);
})();
