// The rearag chat page: plain browser JavaScript, no build step. It talks to the same
// OpenAI-compatible API as any client (POST /v1/chat/completions, stream: true).
//
// Security: document and model text reaches the DOM only through textContent, or through
// markdown-it with HTML disabled (raw HTML in an answer is shown as text), images and reference
// definitions off, and links limited to http(s). Its output is the only string ever parsed as
// HTML here. The server adds a Content-Security-Policy that allows no inline script.
"use strict";

const $ = (id) => document.getElementById(id);
const log = $("log");
const keyInput = $("api-key");
const question = $("question");
// The message content ends with the cited sources as text, for plain clients; the page shows
// its own source list instead. Extractive answers start with a line saying so (a badge here).
const TAIL = "\n\nSources:\n";
const EXTRACTED = "Extracted from the sources:\n";
const MODES = {
  generated: ["Generated", "Written by the model; every sentence was checked against the passage it cites."],
  extractive: ["Extracted from the sources", "The model's draft was not supported, so these are the passages' own best sentences."],
  abstained: ["Abstained", "The passages found do not support an answer."],
};

const md = window.markdownit({ html: false, linkify: false, typographer: false });
// No remote images (a document could track its readers), and no "[1]: url" definitions,
// which would turn citations into links.
md.disable(["image", "reference"]);
md.validateLink = (url) => /^https?:\/\//i.test(url.trim());

keyInput.value = sessionStorage.getItem("rearag-key") || "";
$("show-reasoning").checked = localStorage.getItem("rearag-reasoning") === "1";
document.body.classList.toggle("show-reasoning", $("show-reasoning").checked);

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

function openSettings(open) {
  $("settings").hidden = !open;
  $("settings-toggle").setAttribute("aria-expanded", String(open));
}

// The collections the key sees. On page load, a missing or wrong key opens the settings to
// ask for one; after the key is edited the list is only refreshed (never stealing the focus).
async function loadModels(askForKey = false) {
  const health = await (await fetch("/health")).json();
  $("key-box").hidden = !health.auth;
  let models = health.models;
  if (health.auth) {
    // Each key sees its own collections: the server lists them only to the key.
    const listed = keyInput.value ? await fetch("/v1/models", { headers: headers() }) : null;
    models = listed && listed.ok ? (await listed.json()).data.map((m) => m.id) : [];
    if (!models.length && askForKey) {
      openSettings(true); // nothing works without a right key: ask for it first
      keyInput.focus();
    }
  }
  $("model").replaceChildren(...models.map((m) => el("option", "", m)));
  showCollection();
}

function showCollection() {
  $("empty-collection").textContent = $("model").value || "the documents";
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

// Markdown into `box`, each [n] a citation that opens source n of `turn` (null while
// streaming, when the sources are not known yet).
function renderMarkdown(box, text, turn) {
  const template = document.createElement("template");
  template.innerHTML = md.render(text); // html: false, so every tag in `text` is escaped
  for (const a of template.content.querySelectorAll("a")) {
    a.target = "_blank";
    a.rel = "noopener noreferrer";
  }
  linkCitations(template.content, turn);
  box.replaceChildren(template.content);
}

function linkCitations(root, turn) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (/\[\d{1,3}\]/.test(node.data) && !(parent && parent.closest("code, pre, a"))) found.push(node);
  }
  for (const node of found) {
    // split() with a group keeps the citations: odd indexes are the numbers.
    const parts = node.data.split(/\[(\d{1,3})\]/);
    node.replaceWith(...parts.map((part, i) => {
      // "chamber [1]." reads as "chamber[1]." with the number raised, as in print.
      if (i % 2 === 0) return i + 1 < parts.length ? part.replace(/ $/, "") : part;
      const n = Number(part);
      // A link, not a button: an inline element stays on the line of the word it follows.
      const cite = el(turn ? "a" : "span", "cite", `[${n}]`);
      if (turn) {
        cite.href = "#" + sourceId(turn, n);
        cite.title = "show source " + n;
        cite.addEventListener("click", (event) => {
          event.preventDefault();
          revealSource(turn, n);
        });
      }
      return cite;
    }));
  }
}

function modeBadge(mode) {
  const [label, why] = MODES[mode] || [mode, ""];
  const badge = el("span", "badge mode mode-" + mode, label);
  badge.title = why;
  return badge;
}

// What the streamed message content says so far, without the sources tail (or the start of
// it, "\n\nSou…", which arrives before the rest).
function streamedAnswer(content) {
  if (EXTRACTED.startsWith(content)) return { extractive: false, text: "" }; // not known yet
  const extractive = content.startsWith(EXTRACTED);
  let text = extractive ? content.slice(EXTRACTED.length) : content;
  const cut = text.indexOf(TAIL);
  if (cut >= 0) text = text.slice(0, cut);
  for (let k = TAIL.length - 1; k > 0; k--) {
    if (text.endsWith(TAIL.slice(0, k))) { text = text.slice(0, -k); break; }
  }
  return { extractive, text };
}

let turns = 0; // numbers the turns, for the ids their citations link to

function sourceId(turn, n) {
  return `${turn.id}-source-${n}`;
}

// One question and its answer: the DOM of a turn, filled in as the stream arrives.
function newTurn(text) {
  const turn = el("article", "turn");
  turn.id = "turn-" + ++turns;
  const asked = el("div", "question");
  asked.append(el("p", "", text));
  const reply = el("div", "reply");
  const head = el("div", "reply-head");
  head.append(el("span", "who", "rearag"));
  const progress = el("div", "progress");
  const now = el("span", "now", "Searching…");
  progress.append(el("span", "spinner"), now);
  const draft = el("p", "draft"); // the model's unchecked draft: faint progress, never the answer
  draft.hidden = true;
  const answer = el("div", "answer");
  const trace = el("details", "trace");
  const steps = el("ol", "steps");
  trace.append(el("summary", "", "How this answer was found"), steps);
  trace.hidden = true;
  reply.append(head, progress, draft, answer, trace);
  turn.append(asked, reply);
  return { turn, head, progress, now, draft, answer, trace, steps, content: "", tokens: "" };
}

// Open source n of this turn, scroll to it and make it stand out for a moment.
function revealSource(turn, n) {
  const item = document.getElementById(sourceId(turn, n));
  if (!item) return;
  const more = item.closest("details");
  if (more) more.open = true;
  item.querySelector(".passage").hidden = false;
  item.querySelector(".source-button").setAttribute("aria-expanded", "true");
  item.classList.remove("flash");
  void item.offsetWidth; // restart the animation on a second click
  item.classList.add("flash");
  item.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

function sourceItem(turn, passage, n, cited) {
  const item = el("li", "source" + (cited ? " cited" : ""));
  item.id = sourceId(turn, n);
  item.dataset.n = String(n);
  const button = el("button", "source-button");
  button.type = "button";
  button.setAttribute("aria-expanded", "false");
  const file = (passage.source || "").split("/").pop();
  button.append(el("span", "num", String(n)), el("span", "name", passage.title || file || passage.id));
  // The file beside a title, and a PDF's pages ("p. 12") beside either.
  const where = [passage.title ? file : "", passage.pages].filter(Boolean).join(", ");
  if (where) button.append(el("span", "file", where));
  button.title = passage.source || "";
  const text = el("div", "passage", passage.text.trim());
  text.hidden = true;
  button.addEventListener("click", () => {
    text.hidden = !text.hidden;
    button.setAttribute("aria-expanded", String(!text.hidden));
  });
  item.append(button, text);
  return item;
}

// The answer's sources: the cited ones in view, the others shown to the generator but not
// cited behind a toggle. Numbers are the passages' numbers in the answer.
function sourceList(turn, answer) {
  const cited = new Set(answer.citations.map((c) => c.number));
  const box = el("section", "sources");
  const main = el("ol", "source-list");
  const rest = el("ol", "source-list");
  answer.sources.forEach((p, i) => {
    (cited.has(i + 1) ? main : rest).append(sourceItem(turn, p, i + 1, cited.has(i + 1)));
  });
  if (main.children.length) box.append(el("h3", "", "Sources"), main);
  if (rest.children.length) {
    const more = el("details", "more-sources");
    const count = rest.children.length;
    const noun = count > 1 ? "passages" : "passage";
    const what = main.children.length ? `${count} more ${noun} found, not cited` : `${count} ${noun} found, none cited`;
    more.append(el("summary", "", what), rest);
    box.append(more);
  }
  return box;
}

function showStep(view, extra) {
  view.steps.append(el("li", "", extra.text));
  view.now.textContent = extra.text;
}

function showDraft(view, text) {
  view.tokens += text;
  view.turn.dataset.tokens = String(Number(view.turn.dataset.tokens || 0) + 1);
  if (view.content) return; // the checked answer has started: the draft is no longer news
  view.draft.hidden = false;
  view.draft.textContent = view.tokens.slice(-240);
  view.now.textContent = "Writing a draft, then checking it against the sources…";
}

function showContent(view, piece) {
  view.content += piece;
  view.draft.hidden = true;
  const { extractive, text } = streamedAnswer(view.content);
  if (extractive && !view.head.querySelector(".mode")) view.head.append(modeBadge("extractive"));
  view.answer.classList.add("streaming");
  renderMarkdown(view.answer, text, null);
  view.now.textContent = "Checking the answer…";
}

function showAnswer(view, answer) {
  view.progress.remove();
  view.draft.remove();
  view.answer.classList.remove("streaming");
  view.head.querySelector(".mode")?.remove();
  view.head.append(modeBadge(answer.mode));
  renderMarkdown(view.answer, answer.answer, view.turn);
  view.answer.after(sourceList(view.turn, answer));
  const seconds = Object.values(answer.timings || {}).reduce((a, b) => a + b, 0);
  const summary = view.trace.querySelector("summary");
  summary.textContent = `How this answer was found · ${view.steps.children.length} steps`
    + (seconds ? ` · ${seconds.toFixed(1)} s` : "");
  for (const w of answer.reasoning || []) {
    const why = w.reasoning || w.output || "(no reasoning)";
    view.trace.append(el("div", "reasoning", `rerank window [${w.start + 1}-${w.end}] ${w.status}: ${why}`));
  }
  view.trace.hidden = false;
  view.trace.open = $("show-reasoning").checked && (answer.reasoning || []).length > 0;
  view.turn.dataset.mode = answer.mode;
  view.turn.dataset.done = "true";
}

function showError(view, message) {
  view.progress.remove();
  view.draft.remove();
  const box = el("p", "error", message);
  view.answer.after(box);
  if (/api key/i.test(message)) openSettings(true);
}

async function ask(text) {
  const view = newTurn(text);
  log.append(view.turn);
  $("empty").hidden = true;
  view.turn.scrollIntoView({ block: "start", behavior: "smooth" });
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({
        model: $("model").value,
        stream: true,
        messages: [{ role: "user", content: text }],
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
      const piece = chunk.choices?.[0]?.delta?.content;
      if (piece) showContent(view, piece);
      const extra = chunk.rearag; // progress, and at the end the answer with its sources
      if (!extra) continue;
      if (extra.event === "step") showStep(view, extra);
      else if (extra.event === "token") showDraft(view, extra.text);
      else if (extra.event === "answer") showAnswer(view, extra);
    }
    if (!view.turn.dataset.done) throw new Error("the answer stream ended early; try again");
  } catch (err) {
    showError(view, "Error: " + err.message);
  }
}

$("ask").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = question.value.trim();
  if (!text || $("send").disabled) return;
  question.value = "";
  fitQuestion();
  $("send").disabled = true;
  try {
    await ask(text);
  } finally {
    $("send").disabled = false;
    question.focus();
  }
});

function fitQuestion() {
  question.style.height = "auto"; // CSSOM, not a style attribute: allowed by the CSP
  question.style.height = Math.min(question.scrollHeight, 200) + "px";
}
question.addEventListener("input", fitQuestion);
question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("ask").requestSubmit();
  }
});
for (const chip of document.querySelectorAll("#starters .chip")) {
  // A starter, not a canned question: fill the box and put the cursor where the topic goes.
  chip.addEventListener("click", () => {
    const { before, after } = chip.dataset;
    question.value = before + after;
    question.focus();
    question.setSelectionRange(before.length, before.length);
    fitQuestion();
  });
}
keyInput.addEventListener("change", () => {
  sessionStorage.setItem("rearag-key", keyInput.value.trim());
  loadModels();
});
$("show-reasoning").addEventListener("change", (event) => {
  localStorage.setItem("rearag-reasoning", event.target.checked ? "1" : "0");
  document.body.classList.toggle("show-reasoning", event.target.checked);
});
$("settings-toggle").addEventListener("click", () => openSettings($("settings").hidden));
$("model").addEventListener("change", showCollection);
$("new-thread").addEventListener("click", () => {
  thread = newThread();
  log.replaceChildren();
  $("empty").hidden = false;
  question.focus();
});
loadModels(true).catch((err) => {
  $("status").textContent = "Cannot reach the server: " + err.message;
});
