// The newsrag page: asks POST /query/stream (with the conversation so far as `history`), shows the
// answer as it streams, then renders its [n] markers as buttons that open the cited passage with the
// quoted sentence highlighted. All text from the server is inserted with textContent, never as HTML.
"use strict";

const conversation = document.getElementById("conversation");
const form = document.getElementById("ask");
const input = document.getElementById("question");
const send = document.getElementById("send");
const source = document.getElementById("source");
const tooLong = document.getElementById("too-long");
const MAX_QUESTION_CHARS = 1000; // the service's limit (RAG_MAX_QUESTION_CHARS may lower it: its 422 then says so)
let history = []; // [{role: "user"|"assistant", content}], oldest first

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showCitation(citation, button) {
  document.querySelectorAll("button.cite[aria-pressed='true']").forEach((b) => b.setAttribute("aria-pressed", "false"));
  button.setAttribute("aria-pressed", "true");
  document.getElementById("source-n").textContent = `[${citation.n}]`;
  document.getElementById("source-title").textContent = citation.title;
  document.getElementById("source-meta").textContent = citationMeta(citation);
  const passage = document.getElementById("source-passage");
  passage.replaceChildren();
  const from = citation.quote_start - citation.start;
  const to = citation.quote_end - citation.start;
  const text = citation.passage;
  if (from >= 0 && to <= text.length && from < to) {
    passage.append(document.createTextNode(text.slice(0, from)), el("mark", "", text.slice(from, to)),
      document.createTextNode(text.slice(to)));
  } else {
    passage.append(document.createTextNode(text)); // offsets that do not fit: show the passage unmarked
  }
  source.hidden = false;
  // On a phone the passage sits below the conversation: bring it into view (on a wide screen it already is).
  source.scrollIntoView({ block: "nearest" });
}

// A source name and date, where the article has them: a file name ("000_26e4.txt") names no source.
function citationMeta(citation) {
  const named = citation.source && !/\.(txt|jsonl|html?)$/i.test(citation.source) ? citation.source : "";
  const copies = (citation.also_published_by || []).map((c) => c.source).filter(Boolean);
  const also = copies.length ? `also published by ${copies.join(", ")}` : "";
  return [named, citation.published_at, also].filter(Boolean).join(" · ");
}

function renderAnswer(target, response) {
  // Split on the markers; each [n] with a citation becomes a button, everything else stays text.
  const byN = new Map(response.citations.map((c) => [c.n, c]));
  target.replaceChildren();
  for (const part of response.answer.split(/(\[\d+\])/)) {
    const match = /^\[(\d+)\]$/.exec(part);
    const citation = match && byN.get(Number(match[1]));
    if (citation) {
      const button = el("button", "cite", part);
      button.type = "button";
      button.dataset.n = String(citation.n);
      button.setAttribute("aria-pressed", "false");
      button.setAttribute("aria-label", `Show source ${citation.n}: ${citation.title}`);
      button.addEventListener("click", () => showCitation(citation, button));
      target.append(button);
    } else if (part) {
      target.append(document.createTextNode(part));
    }
  }
}

async function problemDetail(response) {
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") return body.detail;
  } catch (_) { /* not JSON */ }
  return `the service answered HTTP ${response.status}`;
}

function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  return { name, data: data.length ? JSON.parse(data.join("\n")) : null };
}

async function ask(question) {
  const turn = el("article", "turn");
  turn.append(el("p", "question", question));
  const answer = el("p", "answer");
  turn.append(answer);
  conversation.append(turn);
  turn.scrollIntoView({ block: "end" });
  const fail = (message) => { answer.remove(); turn.append(el("p", "error", `Error: ${message}`)); };

  let response;
  try {
    response = await fetch("/query/stream", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ question, history }),
    });
  } catch (err) {
    fail(`the service cannot be reached (${err.message})`);
    return;
  }
  if (!response.ok) {
    fail(await problemDetail(response));
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let done = null;
  for (;;) {
    const { value, done: finished } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !finished });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
      if (event.name === "token") answer.textContent += event.data.text;
      else if (event.name === "done") done = event.data;
      else if (event.name === "error") { fail(event.data.detail || "the answer failed"); return; }
    }
    if (finished) break;
  }
  if (!done) { fail("the answer stream ended early"); return; }

  if (done.answerable) {
    renderAnswer(answer, done);
  } else {
    // One refusal, worded for a reader (the streamed text said the same in the service's words).
    answer.replaceWith(el("p", "notice unanswerable", "The sources do not say: no indexed article answers this question."));
  }
  if (done.rewritten_question && done.rewritten_question !== question) {
    turn.insertBefore(el("p", "rewritten", `Searched for: ${done.rewritten_question}`), turn.children[1]);
  }
  for (const warning of done.warnings || []) turn.append(el("p", "notice", warning));
  const cited = done.citations.length ? ` · ${done.citations.length} source(s), click a [n] to read it` : "";
  turn.append(el("p", "meta", `${done.mode} answer in ${Math.round(done.timings_ms.total || 0)} ms${cited}`));
  history.push({ role: "user", content: question }, { role: "assistant", content: done.answer });
  history = history.slice(-20);
}

// A question over the limit is said so, with its length, and not sent: a silent cut would ask something else.
function checkLength() {
  const length = input.value.trim().length;
  const over = length > MAX_QUESTION_CHARS;
  tooLong.hidden = !over;
  tooLong.textContent = over ? `A question can be at most ${MAX_QUESTION_CHARS} characters; this one has ${length}.` : "";
  send.disabled = over;
  return !over;
}
input.addEventListener("input", checkLength);

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = input.value.trim();
  if (!question || !checkLength()) return;
  input.value = "";
  send.disabled = true;
  try {
    await ask(question);
  } finally {
    send.disabled = false;
    input.focus();
  }
});

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
});

document.getElementById("source-close").addEventListener("click", () => { source.hidden = true; });
document.getElementById("new-chat").addEventListener("click", () => {
  history = [];
  conversation.replaceChildren();
  source.hidden = true;
  input.focus();
});
