// The linker's graph around a memory (Cytoscape.js): memories, entities, typed edges.
"use strict";
(function () {
  const colours = {similar: "#4a5568", entity: "#2f855a", mentions: "#38a169", updates: "#b7791f",
    extends: "#3182ce", contradicts: "#e53e3e", supersedes: "#c05621", duplicate: "#805ad5"};
  const elements = (graph) => [
    ...graph.nodes.map((n) => ({group: "nodes", data: n, classes: n.kind + (n.root ? " root" : "")})),
    ...graph.edges.map((e) => ({group: "edges", data: {id: e.source + ">" + e.target + ":" + e.kind, ...e}})),
  ];
  const cy = cytoscape({
    container: document.getElementById("graph"),
    elements: elements(readData("graph")),
    style: [
      {selector: "node", style: {label: "data(label)", "font-size": 9, "text-wrap": "ellipsis",
        "text-max-width": 140, "background-color": "#90cdf4", width: 18, height: 18}},
      {selector: "node.entity", style: {shape: "round-rectangle", "background-color": "#9ae6b4"}},
      {selector: "node.root", style: {"background-color": "#2b6cb0", width: 26, height: 26}},
      {selector: "edge", style: {width: 2, "curve-style": "bezier", "target-arrow-shape": "triangle",
        "line-color": (e) => colours[e.data("kind")] || "#a0aec0",
        "target-arrow-color": (e) => colours[e.data("kind")] || "#a0aec0"}},
      {selector: 'edge[kind = "contradicts"]', style: {"line-style": "dashed", width: 3}},
    ],
    layout: {name: "cose", animate: false},
  });
  window.mnemoGraph = cy;  // the tests read it
  cy.on("tap", "node.memory", async (event) => {
    const id = event.target.id();
    const response = await fetch("/ui/api/graph/" + encodeURIComponent(id), {credentials: "same-origin"});
    if (!response.ok) return;
    const fresh = elements(await response.json()).filter((el) => cy.getElementById(el.data.id).empty());
    cy.add(fresh);
    cy.layout({name: "cose", animate: false}).run();
  });
})();
