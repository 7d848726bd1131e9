// The rearag chat page: plain browser JavaScript, no build step. It talks to the same
// OpenAI-compatible API as any client (POST /v1/chat/completions, stream: true). Document
// text is only ever inserted with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const log = $("log");
const keyInput = $("api-key");
keyInput.value = sessionStorage.getItem("rearag-key") || "";

function newThread() {
  const id = "web-" + crypto.randomUUID();
  sessionStorage.setItem("rearag-thread", id);
  return id;
}
let thread = sessionStorage.getItem("rearag-thread") || newThread();

function headers() {
  const h = { "Content-Type": "application/json", "X-Thread-Id": thread };
  const key = keyInput.value.trim();
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function loadModels() {
  const health = await (await fetch("/health")).json();
  $("key-box").hidden = !health.auth;
  const select = $("model");
  select.replaceChildren(...health.models.map((m) => el("option", "", m)));
}

// Server-sent events from a fetch body: yields each `data:` payload.
async function* sseData(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (line.startsWith("data: ")) yield line.slice(6);
      }
    }
  }
}

function showSources(turn, answer) {
  const cited = new Set(answer.citations.map((c) => c.number));
  const list = el("ol", "sources");
  answer.sources.forEach((p, i) => {
    const n = i + 1;
    const item = el("li", cited.has(n) ? "cited" : "");
    const name = p.title || p.source.split("/").pop();
    const button = el("button", "source", `[${n}] ${name}`);
    button.type = "button";
    button.title = p.source;
    const text = el("div", "passage", p.text);
    text.hidden = true;
    button.addEventListener("click", () => { text.hidden = !text.hidden; });
    item.append(button, text);
    list.append(item);
  });
  turn.append(list);
  if ($("show-reasoning").checked) {
    for (const w of answer.reasoning || []) {
      const why = w.reasoning || w.output || "(no reasoning)";
      turn.append(el("div", "reasoning", `rerank window [${w.start + 1}-${w.end}] ${w.status}: ${why}`));
    }
  }
}

async function ask(question) {
  const turn = el("section", "turn");
  turn.append(el("div", "question", question));
  const steps = el("div", "steps");
  const answerBox = el("div", "answer draft");
  turn.append(steps, answerBox);
  log.append(turn);
  $("status").textContent = "thinking…";
  const response = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: headers(),
    body: JSON.stringify({
      model: $("model").value,
      stream: true,
      messages: [{ role: "user", content: question }],
    }),
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error((body.error && body.error.message) || response.statusText);
  }
  for await (const payload of sseData(response)) {
    if (payload === "[DONE]") break;
    const chunk = JSON.parse(payload);
    if (chunk.error) throw new Error(chunk.error.message);
    const extra = chunk.rearag; // progress and the checked answer with its sources
    if (!extra) continue;
    if (extra.event === "step") {
      steps.textContent += "· " + extra.text + "\n";
      $("status").textContent = extra.text;
    } else if (extra.event === "token") {
      answerBox.textContent += extra.text; // the draft, replaced by the checked answer below
      turn.dataset.tokens = String(Number(turn.dataset.tokens || 0) + 1);
    } else if (extra.event === "answer") {
      answerBox.classList.remove("draft");
      answerBox.textContent = extra.answer;
      if (extra.mode === "extractive") {
        // Said plainly: these sentences are quoted from the sources, not written by a model.
        answerBox.before(el("div", "mode", "extracted from the sources"));
      }
      turn.dataset.done = "true";
      showSources(turn, extra);
    }
  }
  $("status").textContent = "";
}

$("ask").addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  $("question").value = "";
  $("send").disabled = true;
  try {
    await ask(question);
  } catch (err) {
    log.append(el("p", "error", "error: " + err.message));
    $("status").textContent = "";
  } finally {
    $("send").disabled = false;
  }
});
$("question").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("ask").requestSubmit();
  }
});
keyInput.addEventListener("change", () => {
  sessionStorage.setItem("rearag-key", keyInput.value.trim());
});
$("new-thread").addEventListener("click", () => {
  thread = newThread();
  log.replaceChildren();
});
loadModels().catch((err) => { $("status").textContent = "cannot reach the server: " + err.message; });
