// The dashboard's shared script: page data, actions (JSON POSTs carrying the page's CSRF
// token), sign-in. No inline script runs on these pages (see the Content-Security-Policy).
"use strict";

function readData(name) {
  const node = document.getElementById("data-" + name);
  return node ? JSON.parse(node.textContent) : null;
}

async function act(path, body) {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const response = await fetch(path, {
    method: "POST",
    headers: {"content-type": "application/json", "x-csrf-token": token},
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

function say(text, failed) {
  const node = document.getElementById("action-result");
  if (node) {
    node.textContent = text;
    node.className = "result" + (failed ? " error" : "");
  }
}

function on(selector, event, handler) {
  const node = document.querySelector(selector);
  if (node) node.addEventListener(event, handler);
}

on("#login", "submit", async (e) => {
  e.preventDefault();
  const response = await fetch("/ui/api/login", {
    method: "POST",
    headers: {"content-type": "application/json"},
    body: JSON.stringify({key: e.target.key.value}),
    credentials: "same-origin",
  });
  if (response.ok) window.location = "/ui";
  else say((await response.json()).error, true);
});

on("#store", "submit", async (e) => {
  e.preventDefault();
  try {
    const namespace = e.target.dataset.namespace || e.target.namespace.value;
    const r = await act("/ui/api/store", {namespace: namespace, text: e.target.text.value});
    say("Stored " + r.memory_id + " at position " + r.position + ".");
    e.target.text.value = "";
  } catch (err) { say(err.message, true); }
});

on("#erase", "submit", async (e) => {
  e.preventDefault();
  try {
    await act("/ui/api/erase", {namespace: e.target.dataset.namespace, confirm: e.target.confirm.value});
    window.location = "/ui";
  } catch (err) { say(err.message, true); }
});

document.querySelectorAll(".memory-actions button").forEach((button) => {
  button.addEventListener("click", async () => {
    const memory = button.parentElement.dataset.memory;
    try {
      if (button.dataset.forget) {
        await act("/ui/api/forget", {memory_id: memory, reason: "from the dashboard"});
        say("Forgotten.");
      } else {
        await act("/ui/api/feedback", {memory_id: memory, useful: button.dataset.useful === "true"});
        say("Thank you: noted.");
      }
    } catch (err) { say(err.message, true); }
  });
});
