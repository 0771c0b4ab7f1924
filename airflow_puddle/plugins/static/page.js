// The Puddle page: polls api/systems every poll interval and redraws. Text only (textContent), never HTML.
"use strict";

const COLUMNS = ["System", "Product", "Status", "Instance type", "GPU", "Session cost", "Total cost", "Idle",
  "URL", "Created by (DAG / run / task)"];
let pollMs = 5000;

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function money(value) {
  const n = Number(value);
  return n > 0 && n < 0.01 ? "< 0.01" : n.toFixed(2);
}

// Open an Airflow UI page in the whole window, not in this frame. The UI frames this page in a sandbox
// without allow-top-navigation, so push the route into the (same-origin) UI's history and let its router
// follow; outside the UI, or if that is not possible, the link navigates as usual.
function openInAirflow(event) {
  const href = event.currentTarget.getAttribute("href");
  try {
    const top = window.top;
    if (top === window || top.location.origin !== window.location.origin) return;
    const state = top.history.state || {};
    top.history.pushState({ usr: null, key: Math.random().toString(36).slice(2, 10), idx: (state.idx || 0) + 1 },
      "", href);
    top.dispatchEvent(new PopStateEvent("popstate", { state: top.history.state }));
    event.preventDefault();
  } catch (err) {
    // a cross-origin parent: let the link navigate this frame
  }
}

function ownerCell(owner) {
  const td = el("td");
  if (!owner) {
    td.appendChild(el("span", "not recorded", { class: "empty" }));
    return td;
  }
  const mapped = owner.map_index >= 0 ? ` [${owner.map_index}]` : "";
  const link = el("a", `${owner.dag_id} / ${owner.run_id} / ${owner.task_id}${mapped}`,
    { href: owner.url, "data-owner-link": "" });
  link.addEventListener("click", openInAirflow);
  td.appendChild(link);
  return td;
}

function systemRow(s) {
  const tr = el("tr", null, { "data-system-id": s.id, "data-system-name": s.name });
  tr.appendChild(el("td", s.name));
  tr.appendChild(el("td", `${s.product} ${s.version}`));
  tr.appendChild(el("td", s.status));
  tr.appendChild(el("td", s.instance_type));
  tr.appendChild(el("td", s.gpu ? `yes (${s.gpu_count}× ${s.gpu_type || "GPU"})` : "no"));
  tr.appendChild(el("td", money(s.current_session_cost), { class: "num" }));
  tr.appendChild(el("td", money(s.total_cost), { class: "num" }));
  tr.appendChild(el("td", s.stops_in || "—"));
  const url = el("td");
  if (s.url) url.appendChild(el("a", s.url, { href: s.url, rel: "noopener noreferrer" }));
  else url.appendChild(el("span", "—", { class: "empty" }));
  tr.appendChild(url);
  tr.appendChild(ownerCell(s.owner));
  return tr;
}

function connectionSection(c) {
  const section = el("section", null, { "data-conn-id": c.conn_id });
  section.appendChild(el("h2", `Connection ${c.conn_id}`));
  if (!c.ok) {
    section.appendChild(el("p", `Puddle unreachable: ${c.error}`, { class: "error" }));
    return section;
  }
  section.appendChild(el("p", `CU: ${c.cu.consumed} consumed, ${c.cu.available} available`, { class: "cu" }));
  if (c.systems.length === 0) {
    section.appendChild(el("p", "No running systems.", { class: "empty" }));
    return section;
  }
  const table = el("table");
  const head = el("tr");
  for (const name of COLUMNS) head.appendChild(el("th", name));
  table.appendChild(el("thead")).appendChild(head);
  const body = el("tbody");
  for (const s of c.systems) body.appendChild(systemRow(s));
  table.appendChild(body);
  section.appendChild(table);
  return section;
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const resp = await fetch("api/systems", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!resp.ok) throw new Error(resp.status === 401 || resp.status === 403 ? "not logged in" : `HTTP ${resp.status}`);
    const data = await resp.json();
    pollMs = Math.max(1000, data.poll_interval_s * 1000);
    const main = document.getElementById("connections");
    main.replaceChildren(...data.connections.map(connectionSection));
    if (data.connections.length === 0) main.appendChild(el("p", "No Puddle connection you may read.", { class: "empty" }));
    status.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every ${data.poll_interval_s} s.`;
  } catch (err) {
    status.textContent = `Could not refresh (${err.message}); trying again.`;
  }
  setTimeout(refresh, pollMs);
}

refresh();
