// The Switchyard dashboard: one page over the task API, the same endpoints scripts use.
// Every value from the server is put in the page as text (never as HTML): task payloads,
// results and errors come from users.
"use strict";

const REFRESH_MS = 2000;
const TOKEN_KEY = "switchyard-token";
const FINAL = new Set(["done", "failed", "dead", "expired", "cancelled"]);
const STATES = ["queued", "running", "done", "failed", "dead", "expired", "cancelled"];

// ---- Talking to the API -------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  // A form (an uploaded image) sets its own multipart type, boundary included.
  if (options.body !== undefined && !(options.body instanceof FormData)) headers["Content-Type"] = "application/json";
  const secret = token();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (error) {
    connection(false);
    throw new ApiFailure(0, `cannot reach the server: ${error.message}`);
  }
  connection(true);
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.message ? body.message : `${response.status} ${response.statusText}`;
    if (response.status === 401) showTokenForm("the server asks for its token");
    throw new ApiFailure(response.status, message);
  }
  return body;
}

function connection(ok) {
  const status = document.getElementById("connection");
  status.textContent = ok ? "live" : "lost contact with the server, retrying…";
  status.classList.toggle("lost", !ok);
}

// ---- Building the page ----------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function table(id, headings, rows, empty) {
  const head = el("tr", {}, headings.map(([text, cls]) => el("th", { class: cls }, text)));
  const body = el("tbody", {}, rows);
  if (rows.length === 0) body.append(el("tr", {}, el("td", { colspan: headings.length, class: "muted" }, empty)));
  return el("table", { id }, el("thead", {}, head), body);
}

function pretty(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function ago(ms) {
  if (ms < 1500) return "just now";
  const seconds = Math.round(ms / 1000);
  return seconds < 120 ? `${seconds} s ago` : `${Math.round(seconds / 60)} min ago`;
}

function duration(ms) {
  if (ms === undefined || ms === null) return "";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function when(ms) {
  return new Date(ms).toLocaleTimeString();
}

function stateCell(status) {
  return el("td", { class: `state state-${status}`, "data-state": status }, status);
}

function notice(kind, text, id) {
  return el("div", { class: `notice ${kind}`, id, role: kind === "error" ? "alert" : "status" }, text);
}

function confirmAction(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

// ---- Views ----------------------------------------------------------------------------------
// A view renders once and may return a refresh function, called every REFRESH_MS while it is
// shown. A refresh that fails leaves the last figures up and says so in the header.

const views = {
  overview: renderOverview,
  tasks: renderTasks,
  task: renderTask,
  "dead-letters": renderDeadLetters,
  algorithms: renderAlgorithms,
  algorithm: renderAlgorithm,
};

let refreshTimer = null;
let renderGeneration = 0;

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "tasks" && parts[1]) return ["task", parts[1]];
  if (parts[0] === "algorithms" && parts[1]) return ["algorithm", parts[1]];
  return [views[parts[0]] ? parts[0] : "overview", null];
}

async function show() {
  clearInterval(refreshTimer);
  const generation = ++renderGeneration;
  const [name, argument] = route();
  for (const link of document.querySelectorAll("nav a")) {
    const target = link.dataset.view;
    link.classList.toggle("active", target === name || (target === "tasks" && name === "task") ||
      (target === "algorithms" && name === "algorithm"));
  }
  const view = document.getElementById("view");
  view.replaceChildren();
  const refresh = views[name](view, argument);
  if (!refresh) return;
  const tick = async () => {
    if (generation !== renderGeneration) return;
    try {
      await refresh();
    } catch (error) {
      if (error.status !== 0) console.warn(error);
    }
  };
  await tick();
  refreshTimer = setInterval(tick, REFRESH_MS);
}

function renderOverview(view) {
  const runners = el("div", { id: "runners-box" });
  const queues = el("div", { class: "cards", id: "queues" });
  const chart = el("div", { id: "chart-box" });
  const stats = el("div", { id: "stats-box" });
  view.append(
    el("h1", {}, "Overview"),
    queues,
    el("h2", {}, "Queue over the last minutes"), chart,
    el("h2", {}, "Runners"), runners,
    el("h2", {}, "Algorithms, last 5 minutes"), stats,
  );
  return async () => {
    const [runnerList, depths, recent] = await Promise.all([
      api("/v1/runners"), api("/v1/queues"), api("/v1/stats"),
    ]);
    queues.replaceChildren(
      card("queue-tasks", depths.tasks, "tasks waiting"),
      card("queue-delayed", depths.delayed, "retries waiting"),
      card("queue-dead", depths.dead_letters, "dead letters"),
      card("runner-count", runnerList.length, runnerList.length === 1 ? "runner" : "runners"),
    );
    runners.replaceChildren(runnerTable(runnerList));
    chart.replaceChildren(rateChart(recent.series, recent.interval_ms));
    stats.replaceChildren(statsTable(recent.algorithms));
  };
}

function card(id, figure, label) {
  return el("div", { id }, el("div", { class: "figure" }, figure), el("div", { class: "label" }, label));
}

function runnerTable(runners) {
  const rows = runners.map((runner) => el("tr", { "data-runner": runner.id },
    el("td", {}, runner.id),
    el("td", {}, runner.base_url),
    el("td", {}, runner.algorithms.map((algorithm) => algorithm.name).join(", "),
      runner.unavailable && runner.unavailable.length
        ? el("div", { class: "muted" }, `unavailable: ${runner.unavailable.map((u) => u.name).join(", ")}`)
        : null),
    el("td", { class: "num" }, runner.capacity),
    el("td", { class: "num" }, runner.in_flight === null || runner.in_flight === undefined ? "–" : runner.in_flight),
    el("td", { class: runner.healthy ? "healthy" : "unhealthy" }, runner.healthy ? "healthy" : "late"),
    el("td", {}, runner.legacy ? "never (series protocol)" : ago(runner.last_heartbeat_ms_ago)),
  ));
  return table("runners", [["Runner"], ["URL"], ["Algorithms"], ["Capacity", "num"], ["In flight", "num"],
    ["Health"], ["Last heartbeat"]], rows, "No runner is registered.");
}

function statsTable(algorithms) {
  const rows = algorithms.map((stat) => el("tr", { "data-algorithm": stat.algorithm },
    el("td", {}, stat.algorithm),
    el("td", { class: "num" }, stat.finished),
    el("td", { class: "num" }, (stat.finished / 5).toFixed(1)),
    el("td", { class: "num" }, stat.finished ? `${((100 * stat.failed) / stat.finished).toFixed(1)} %` : "–"),
    el("td", { class: "num" }, duration(stat.p50_ms)),
    el("td", { class: "num" }, duration(stat.p95_ms)),
    el("td", { class: "num" }, duration(stat.p99_ms)),
  ));
  return table("algorithm-stats", [["Algorithm"], ["Finished", "num"], ["Per minute", "num"], ["Errors", "num"],
    ["p50", "num"], ["p95", "num"], ["p99", "num"]], rows, "No task finished in the last 5 minutes.");
}

// Depth of the task queue and tasks finished per sample, as lines on one SVG.
function rateChart(series, intervalMs) {
  const width = 800;
  const height = 160;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "chart");
  svg.setAttribute("id", "rates");
  const lines = {
    queued: series.map((sample) => sample.tasks + sample.delayed),
    submitted: series.map((sample) => sample.submitted),
    finished: series.map((sample) => sample.finished),
    failed: series.map((sample) => sample.failed),
  };
  const top = Math.max(1, ...Object.values(lines).flat());
  const step = series.length > 1 ? width / (series.length - 1) : width;
  for (const [name, values] of Object.entries(lines)) {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("class", name);
    line.setAttribute("points", values.map((value, i) =>
      `${(i * step).toFixed(1)},${(height - 8 - (value / top) * (height - 24)).toFixed(1)}`).join(" "));
    svg.append(line);
  }
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", "4");
  label.setAttribute("y", "12");
  label.textContent = `max ${top}`;
  svg.append(label);
  const seconds = Math.round((series.length * intervalMs) / 1000);
  return el("div", {}, svg, el("div", { class: "legend muted" },
    el("span", { class: "queued" }, "■ waiting (tasks + retries)"),
    el("span", { class: "submitted" }, `■ submitted per ${intervalMs / 1000} s`),
    el("span", { class: "finished" }, `■ finished per ${intervalMs / 1000} s`),
    el("span", { class: "failed" }, `■ failed per ${intervalMs / 1000} s`),
    el("span", {}, series.length ? `last ${seconds} s` : "no samples yet")));
}

function renderTasks(view) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const algorithm = el("select", { id: "filter-algorithm" }, el("option", { value: "" }, "every algorithm"));
  const state = el("select", { id: "filter-state" }, el("option", { value: "" }, "every state"),
    STATES.map((name) => el("option", { value: name }, name)));
  state.value = params.get("state") || "";
  const list = el("div", { id: "tasks-box" });
  const older = el("button", { id: "older", hidden: true }, "Older tasks");
  let cursor = null;
  let pages = [];
  // Until the algorithm list has loaded, the select cannot hold the one the address asks for.
  let wantedAlgorithm = params.get("algorithm") || "";
  const filterChanged = () => {
    wantedAlgorithm = algorithm.value;
    const query = new URLSearchParams();
    if (algorithm.value) query.set("algorithm", algorithm.value);
    if (state.value) query.set("state", state.value);
    history.replaceState(null, "", `#/tasks${query.toString() ? `?${query}` : ""}`);
    pages = [];
    cursor = null;
    load(false);
  };
  algorithm.addEventListener("change", filterChanged);
  state.addEventListener("change", filterChanged);
  older.addEventListener("click", () => load(true));
  api("/v1/algorithms").then((algorithms) => {
    for (const listing of algorithms) algorithm.append(el("option", { value: listing.name }, listing.name));
    algorithm.value = wantedAlgorithm;
  }).catch(() => {});
  view.append(el("h1", {}, "Tasks"),
    el("div", { class: "toolbar" }, el("label", {}, "Algorithm ", algorithm), el("label", {}, "State ", state)),
    list, el("div", { class: "toolbar" }, older));

  async function load(more) {
    const query = new URLSearchParams({ limit: "50" });
    if (wantedAlgorithm) query.set("algorithm", wantedAlgorithm);
    if (state.value) query.set("state", state.value);
    if (more && cursor) query.set("cursor", cursor);
    const page = await api(`/v1/tasks?${query}`);
    // A refresh replaces the newest page and keeps the older pages the user opened.
    pages = more ? [...pages, page.tasks] : [page.tasks, ...pages.slice(1)];
    if (more || pages.length === 1) cursor = page.next_cursor;
    older.hidden = !cursor;
    list.replaceChildren(taskTable(pages.flat()));
  }
  return () => load(false);
}

function taskTable(tasks) {
  const rows = tasks.map((task) => el("tr", { "data-task": task.id },
    el("td", {}, el("a", { href: `#/tasks/${encodeURIComponent(task.id)}` }, task.id)),
    el("td", {}, task.algorithm),
    stateCell(task.status),
    el("td", { class: "num" }, task.attempts),
    el("td", { class: "num" }, duration(task.duration_ms)),
    el("td", {}, when(task.submitted_at_ms)),
  ));
  return table("tasks", [["Task"], ["Algorithm"], ["State"], ["Attempts", "num"], ["Duration", "num"],
    ["Submitted"]], rows, "No task matches.");
}

function renderTask(view, id) {
  const box = el("div", { id: "task-box" });
  view.append(el("h1", {}, "Task ", el("code", {}, id)), box);
  let finished = false;
  return async () => {
    if (finished) return;
    let task;
    try {
      task = await api(`/v1/tasks/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error.status === 404 || error.status === 410 || error.status === 400) {
        box.replaceChildren(notice("error", error.message, "task-missing"));
        finished = true;
        return;
      }
      throw error;
    }
    finished = FINAL.has(task.status);
    box.replaceChildren(taskDetail(task));
  };
}

function taskDetail(task) {
  const facts = [
    ["State", el("span", { class: `state state-${task.status}`, id: "task-state" }, task.status)],
    ["Algorithm", task.algorithm],
    ["Priority", task.priority ?? 0],
    ["Attempts", task.attempts],
    ["Runner", task.runner || "–"],
    ["Duration", duration(task.duration_ms) || "–"],
    ["Submitted", new Date(task.submitted_at_ms).toLocaleString()],
  ];
  const parts = [el("table", { class: "facts" }, el("tbody", {},
    facts.map(([name, value]) => el("tr", {}, el("th", {}, name), el("td", {}, value)))))];
  if (task.status === "queued") {
    parts.push(el("div", { class: "toolbar" }, el("button", {
      id: "cancel-task",
      onclick: async (event) => {
        if (!(await confirmAction(`Cancel task ${task.id}? It will not run.`))) return;
        event.target.disabled = true;
        try {
          const answer = await api(`/v1/tasks/${encodeURIComponent(task.id)}`, { method: "DELETE" });
          event.target.replaceWith(notice("ok", `cancelled: ${answer.cancelled}`));
        } catch (error) {
          event.target.replaceWith(notice("error", error.message));
        }
      },
    }, "Cancel task")));
  }
  parts.push(el("h2", {}, "Payload"),
    task.payload === undefined ? el("p", { class: "muted" }, "dropped after its retention (up --retain-payloads)")
      : el("pre", { id: "task-payload" }, pretty(task.payload)));
  if (task.result !== undefined) parts.push(el("h2", {}, "Result"), el("pre", { id: "task-result" }, pretty(task.result)));
  if (task.error) {
    parts.push(el("h2", {}, "Error"), el("pre", { id: "task-error", class: "error" },
      `${task.error.kind}${task.error.status ? ` (HTTP ${task.error.status})` : ""}: ${task.error.message}`));
  }
  const attempts = task.history || [];
  parts.push(el("h2", {}, "Failed attempts"), table("task-history",
    [["Attempt", "num"], ["Runner"], ["Error"]],
    attempts.map((attempt) => el("tr", {},
      el("td", { class: "num" }, attempt.attempt),
      el("td", {}, attempt.runner || "– (no runner)"),
      el("td", {}, `${attempt.kind}: ${attempt.message}`))),
    "No attempt failed."));
  return el("div", {}, parts);
}

function renderDeadLetters(view) {
  const box = el("div", { id: "dead-box" });
  const outcome = el("div", { id: "requeue-outcome" });
  const algorithm = el("select", { id: "requeue-algorithm" });
  const selected = new Set();
  const requeueSelected = el("button", { id: "requeue-selected", disabled: true }, "Requeue selected");
  const requeueAlgorithm = el("button", { id: "requeue-all" }, "Requeue all of");
  view.append(el("h1", {}, "Dead letters"),
    el("div", { class: "toolbar" }, requeueSelected, requeueAlgorithm, algorithm), outcome, box);

  async function requeue(request, description) {
    if (!(await confirmAction(`Requeue ${description}? They go back to the task queue with their attempts reset.`))) return;
    try {
      const answer = await api("/v1/dead-letters/requeue", { method: "POST", body: JSON.stringify(request) });
      outcome.replaceChildren(notice("ok", `requeued ${answer.requeued} dead letter${answer.requeued === 1 ? "" : "s"}`, "requeue-result"));
      selected.clear();
      await refresh();
    } catch (error) {
      outcome.replaceChildren(notice("error", error.message, "requeue-result"));
    }
  }
  requeueSelected.addEventListener("click", () =>
    requeue({ keys: [...selected] }, `${selected.size} selected dead letter${selected.size === 1 ? "" : "s"}`));
  requeueAlgorithm.addEventListener("click", () =>
    requeue({ algorithm: algorithm.value }, `every dead letter of '${algorithm.value}'`));

  async function refresh() {
    const letters = await api("/v1/dead-letters?limit=200");
    const names = [...new Set(letters.map((letter) => letter.algorithm).filter(Boolean))].sort();
    const current = algorithm.value;
    algorithm.replaceChildren(...names.map((name) => el("option", { value: name }, name)));
    if (names.includes(current)) algorithm.value = current;
    requeueAlgorithm.disabled = names.length === 0;
    for (const key of [...selected]) if (!letters.some((letter) => letter.key === key)) selected.delete(key);
    requeueSelected.disabled = selected.size === 0;
    const rows = letters.map((letter) => el("tr", { "data-key": letter.key, "data-task": letter.id },
      el("td", {}, el("input", {
        type: "checkbox", class: "pick", checked: selected.has(letter.key),
        onchange: (event) => {
          if (event.target.checked) selected.add(letter.key);
          else selected.delete(letter.key);
          requeueSelected.disabled = selected.size === 0;
        },
      })),
      el("td", {}, letter.id ? el("a", { href: `#/tasks/${encodeURIComponent(letter.id)}` }, letter.id) : "–"),
      el("td", {}, letter.algorithm || "–"),
      el("td", { class: "reason" }, letter.reason),
      el("td", { class: "num" }, letter.attempts),
      el("td", { class: "last-error" }, letter.last_error),
      el("td", {}, el("button", { class: "requeue-one", onclick: () => requeue({ keys: [letter.key] }, `dead letter ${letter.id || letter.key}`) }, "Requeue")),
    ));
    box.replaceChildren(table("dead-letters", [[""], ["Task"], ["Algorithm"], ["Reason"], ["Attempts", "num"],
      ["Last error"], [""]], rows, "No dead letters."));
  }
  return refresh;
}

function renderAlgorithms(view) {
  const box = el("div", { id: "algorithms-box" });
  view.append(el("h1", {}, "Algorithms"), box);
  return async () => {
    const algorithms = await api("/v1/algorithms");
    const rows = algorithms.map((listing) => el("tr", { "data-algorithm": listing.name },
      el("td", {}, listing.available
        ? el("a", { href: `#/algorithms/${encodeURIComponent(listing.name)}` }, listing.name) : listing.name),
      el("td", {}, listing.schema && listing.schema.description ? listing.schema.description : ""),
      el("td", { class: "num" }, listing.replicas.length),
      el("td", { class: listing.available ? "healthy" : "unhealthy" },
        listing.available ? "available" : listing.unavailable_reason || "unavailable"),
    ));
    box.replaceChildren(table("algorithms", [["Algorithm"], ["Description"], ["Replicas", "num"], ["State"]],
      rows, "No algorithm is registered."));
  };
}

// ---- A schema as a form -------------------------------------------------------------------

// The payload field an image file fills (`POST /v1/tasks` takes the file as a multipart form).
const IMAGE_FIELD = "image_base64";

function resolve(schema, root) {
  if (schema && schema.$ref) {
    const path = schema.$ref.replace(/^#\//, "").split("/");
    return path.reduce((node, key) => (node ? node[key] : undefined), root) || {};
  }
  return schema || {};
}

// The type a field's input reads, from `type` (with `null` for optional fields) or `anyOf`.
function fieldType(schema, root) {
  const resolved = resolve(schema, root);
  if (resolved.enum) return "enum";
  let type = resolved.type;
  if (Array.isArray(type)) type = type.find((name) => name !== "null");
  if (!type && resolved.anyOf) {
    const other = resolved.anyOf.map((option) => resolve(option, root)).find((option) => option.type !== "null");
    return other ? fieldType(other, root) : "json";
  }
  return ["string", "integer", "number", "boolean"].includes(type) ? type : "json";
}

function renderAlgorithm(view, name) {
  const box = el("div", { id: "algorithm-box" });
  view.append(el("h1", {}, "Try ", el("code", {}, name)), box);
  api("/v1/algorithms").then((algorithms) => {
    const listing = algorithms.find((candidate) => candidate.name === name);
    if (!listing) {
      box.replaceChildren(notice("error", `no algorithm named '${name}' is registered`));
      return;
    }
    box.replaceChildren(schemaForm(listing));
  }).catch((error) => box.replaceChildren(notice("error", error.message)));
  return null;
}

function schemaForm(listing) {
  const schema = listing.schema || {};
  const properties = schema.properties || {};
  const required = new Set(schema.required || []);
  const fields = {};
  const form = el("form", { class: "payload", id: "payload-form", novalidate: true });
  if (schema.description) form.append(el("p", { class: "muted" }, schema.description));
  for (const [field, property] of Object.entries(properties)) {
    const resolved = resolve(property, schema);
    let type = fieldType(property, schema);
    const id = `field-${field}`;
    let input;
    if (field === IMAGE_FIELD && type === "string") {
      // Base64 is no thing to paste: the file is uploaded as it is and the API encodes it.
      type = "file";
      input = el("input", { type: "file", id, name: field, accept: "image/*" });
    } else if (type === "boolean") {
      input = el("input", { type: "checkbox", id, name: field, checked: resolved.default === true });
    } else if (type === "enum") {
      input = el("select", { id, name: field },
        required.has(field) ? null : el("option", { value: "" }, "(default)"),
        resolved.enum.map((value) => el("option", { value: JSON.stringify(value) }, String(value))));
      if (resolved.default !== undefined) input.value = JSON.stringify(resolved.default);
    } else if (type === "json") {
      input = el("textarea", { id, name: field, placeholder: "JSON" });
      if (resolved.default !== undefined) input.value = JSON.stringify(resolved.default, null, 2);
    } else {
      // Numbers are typed as text: what the user typed goes to the API as it is when it is not a
      // number, so the API's own error names the field, the same as for any other client.
      input = el("input", { type: "text", id, name: field, inputmode: type === "string" ? null : "decimal" });
      if (resolved.default !== undefined && resolved.default !== null) input.value = String(resolved.default);
    }
    const hints = [{ json: "JSON", file: "an image file, uploaded as it is" }[type] || type];
    if (resolved.minimum !== undefined) hints.push(`≥ ${resolved.minimum}`);
    if (resolved.maximum !== undefined) hints.push(`≤ ${resolved.maximum}`);
    if (resolved.default !== undefined) hints.push(`default ${JSON.stringify(resolved.default)}`);
    const error = el("div", { class: "field-error", id: `error-${field}` });
    fields[field] = { input, type, error };
    form.append(el("div", { class: "field" },
      el("label", { for: id, class: required.has(field) ? "required" : null }, field),
      resolved.description || property.description ? el("div", { class: "muted" }, resolved.description || property.description) : null,
      input, el("div", { class: "muted" }, hints.join(", ")), error));
  }
  const formError = el("div", { class: "field-error", id: "form-error" });
  const outcome = el("div", { id: "submit-outcome" });
  const submit = el("button", { type: "submit", class: "primary", id: "submit-task" }, "Submit task");
  form.append(formError, el("div", { class: "toolbar" }, submit), outcome);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const { error } of Object.values(fields)) error.textContent = "";
    formError.textContent = "";
    const payload = {};
    let image = null;
    for (const [field, { input, type, error }] of Object.entries(fields)) {
      const raw = input.value;
      if (type === "file") {
        image = input.files[0] || null;
      } else if (type === "boolean") {
        payload[field] = input.checked;
      } else if (raw === "") {
        continue;
      } else if (type === "integer" || type === "number") {
        payload[field] = raw.trim() !== "" && Number.isFinite(Number(raw)) ? Number(raw) : raw;
      } else if (type === "enum") {
        payload[field] = JSON.parse(raw);
      } else if (type === "json") {
        try {
          payload[field] = JSON.parse(raw);
        } catch (parseError) {
          error.textContent = `not valid JSON: ${parseError.message}`;
          return;
        }
      } else {
        payload[field] = raw;
      }
    }
    submit.disabled = true;
    outcome.replaceChildren(notice("", "submitting…"));
    try {
      let body = JSON.stringify({ algorithm: listing.name, payload });
      if (image) {
        body = new FormData();
        body.append("algorithm", listing.name);
        body.append("payload", JSON.stringify(payload));
        body.append("image", image);
      }
      const { id } = await api("/v1/tasks", { method: "POST", body });
      outcome.replaceChildren(notice("", "queued as "), el("a", { href: `#/tasks/${id}`, id: "submitted-id" }, id));
      const task = await waitFor(id, outcome);
      outcome.replaceChildren(el("p", {}, "Task ", el("a", { href: `#/tasks/${id}`, id: "submitted-id" }, id)), taskDetail(task));
    } catch (error) {
      outcome.replaceChildren();
      const field = Object.keys(fields).find((name) => mentions(error.message, name));
      (field ? fields[field].error : formError).textContent = error.message;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// Whether an API error is about `field`: jsonschema names it as `/field` in the path or quotes
// it in "is a required property".
function mentions(message, field) {
  return message.includes(`'/${field}'`) || message.includes(`'/${field}/`) || message.includes(`"${field}"`) ||
    message.includes(`'payload.${field}'`);
}

async function waitFor(id, outcome) {
  for (;;) {
    const task = await api(`/v1/tasks/${encodeURIComponent(id)}?wait=20s`);
    if (FINAL.has(task.status)) return task;
    const line = outcome.querySelector(".notice");
    if (line) line.textContent = `${task.status}: `;
  }
}

// ---- The token --------------------------------------------------------------------------------

function showTokenForm(reason) {
  const form = document.getElementById("token-form");
  form.hidden = false;
  document.getElementById("token-state").textContent = reason || "";
}

async function checkToken() {
  try {
    const auth = await api("/v1/auth");
    if (!auth.token_required) return;
    showTokenForm(auth.token_valid ? "signed in" : "actions that change tasks need the token");
  } catch (_) {
    // The connection indicator says it; the next view refresh tries again.
  }
}

document.getElementById("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value);
  else sessionStorage.removeItem(TOKEN_KEY);
  // The token is never shown back, not even masked in the field.
  input.value = "";
  const auth = await api("/v1/auth");
  document.getElementById("token-state").textContent = auth.token_valid ? "signed in" : "wrong token";
  if (!auth.token_valid) sessionStorage.removeItem(TOKEN_KEY);
});

window.addEventListener("hashchange", show);
checkToken();
show();
