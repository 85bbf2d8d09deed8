// The demo page's logic: checks WebGPU before anything else, offers models (models.js), checks
// and loads one with each phase named (download, one-time GPU measurement, upload, ready), then
// chats through engine.chat.completions.create({stream: true}) with Markdown bubbles
// (markdown.js), live tok/s and time to first token, and a Stop button. What stops a model from
// running is shown as a screen with what to do (screens.js). The engine runs in a Web Worker.
import { createEngine } from "./wisp-llm/index.js";
import { renderMarkdown } from "./markdown.js";
import { PUBLIC_MODELS, buildPicker, localModels } from "./models.js";
import { NO_WEBGPU, buildMissing, classify, describeAdapter, hideScreen, refusal, showScreen, webgpuAdapter } from "./screens.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const status = (s) => ($("status").textContent = s);
const screen = $("screen");

let engine = null;
let loaded = null; // { url, name } of the model on the GPU
let busy = false;
let gpuLabel = "WebGPU";
const messages = [];

/** Enables the controls that fit the moment: nothing but Stop while busy. */
function controls() {
  const off = !engine || busy || screen.dataset.screen === "no-webgpu" || screen.dataset.screen === "build-missing";
  $("load").disabled = off;
  $("check").disabled = off;
  $("send").disabled = off || !loaded;
  $("stop").disabled = !busy;
  for (const b of document.querySelectorAll("#samples button")) b.disabled = off || !loaded;
}

// --- The load phases --------------------------------------------------------------------------

const phaseEl = (name) => document.querySelector(`#phases li[data-phase="${name}"]`);

function phase(name, state, detail, fraction) {
  const li = phaseEl(name);
  li.className = state;
  if (detail !== undefined) li.querySelector(".phase-detail").textContent = detail;
  const bar = li.querySelector("progress");
  if (bar && fraction !== undefined) bar.value = fraction;
}

function resetPhases() {
  phase("download", "", "from the model's host into this browser's storage (resumable)", 0);
  phase("measure", "", "one time; kept for next time");
  phase("upload", "", "each piece checked, then copied to the GPU", 0);
  phase("ready", "", "");
}

// --- Settings ---------------------------------------------------------------------------------

/** The number in settings field `id`, or `dflt` when it is empty or not a number. */
function setting(id, dflt, integer = false) {
  const v = $(id).valueAsNumber;
  if (!Number.isFinite(v)) return dflt;
  return integer ? Math.max(1, Math.round(v)) : v;
}

// --- Errors as screens ------------------------------------------------------------------------

/** Whether `url`'s host answers at all (a no-cors request resolves even when CORS hides it). */
async function reachable(url) {
  try {
    await fetch(url, { mode: "no-cors", method: "HEAD", cache: "no-store" });
    return true;
  } catch {
    return false;
  }
}

async function showError(e, url) {
  const message = String(e?.message ?? e);
  const probe = /could not fetch|Failed to fetch/.test(message) ? await reachable(url) : null;
  const { kind, screen: s } = classify(e?.name === "EngineFilesMissingError" ? `EngineFilesMissing: ${message}` : message, url, probe);
  showScreen(screen, kind, kind === "build-missing" ? buildMissing(message) : s);
  return kind;
}

// --- Will it run, load ------------------------------------------------------------------------

async function willItRun() {
  const url = $("model").value.trim();
  if (!url || busy) return;
  hideScreen(screen);
  busy = true;
  controls();
  $("willrun").className = "";
  $("willrun").textContent = "Reading the model's header…";
  try {
    const r = await engine.willItRun(url, { context: setting("context", 2048, true) });
    $("willrun").className = r.ok ? "yes" : "no";
    $("willrun").textContent = r.ok
      ? `Yes: ${r.needs.architecture}, about ${mib(r.needs.gpu_bytes_estimate)} of GPU memory (KV cache ${mib(r.needs.kv_cache_bytes)} at context ${r.needs.context}).`
      : "No: see why above.";
    if (!r.ok) {
      const { kind, screen: s } = refusal(r.reasons);
      showScreen(screen, kind, s);
    }
  } catch (e) {
    $("willrun").className = "no";
    $("willrun").textContent = "Cannot tell: see above.";
    await showError(e, url);
  } finally {
    busy = false;
    controls();
  }
}

async function load() {
  const url = $("model").value.trim();
  if (busy) return;
  if (!url) {
    status("Pick a model or type a GGUF URL first.");
    return;
  }
  hideScreen(screen);
  resetPhases();
  $("willrun").textContent = "";
  loaded = null;
  busy = true;
  controls();
  const context = setting("context", 2048, true);
  let current = "download";
  let downloaded = false;
  const t0 = performance.now();
  let tUpload = null;
  try {
    status("Checking the model…");
    phase("download", "active", "reading the model's header…");
    // The header tells whether this adapter can hold the model before a byte is stored.
    const r = await engine.willItRun(url, { context });
    if (!r.ok) {
      phase("download", "failed", "not started");
      const { kind, screen: s } = refusal(r.reasons);
      showScreen(screen, kind, s);
      status("This model does not fit: see above.");
      return;
    }
    phase("download", "active", "connecting…");
    status("Loading…");
    const info = await engine.load(url, {
      context,
      onProgress: (p) => {
        if (p.phase === "download") {
          downloaded = true;
          const resumed = p.resumed_from_chunk ? ` · resumed at chunk ${p.resumed_from_chunk} (the earlier ones were stored)` : "";
          phase("download", "active", `${mib(p.done)} of ${mib(p.total)} · ${mib(p.rate)}/s${resumed}`, p.done / p.total);
          status(`Downloading ${Math.floor((100 * p.done) / p.total)}%`);
          return;
        }
        if (p.phase === "notice") {
          // Kept in view (the status line moves on): e.g. over quota, the model streams uncached.
          $("willrun").className = "no";
          $("willrun").textContent = `Note: ${p.message}`;
          return;
        }
        if (current === "download") {
          phase("download", "done", downloaded ? "stored in this browser" : "already stored in this browser: nothing to download", 1);
        }
        if (p.phase === "measure") {
          current = "measure";
          phase("measure", "active", p.message);
          status("Measuring this GPU (one time)…");
        } else if (p.phase === "load") {
          if (current === "measure") phase("measure", "done", "measured once; kept for next time");
          current = "upload";
          tUpload ??= performance.now();
          phase("upload", "active", `checking and copying ${mib(p.done)} of ${mib(p.total)}`, p.done / p.total);
          status(`Uploading to the GPU ${Math.floor((100 * p.done) / p.total)}%`);
        }
      },
    });
    if (current === "download") phase("download", "done", downloaded ? "stored in this browser" : "already stored in this browser", 1);
    const k = info.adapter.kernels?.source;
    phase("measure", "done",
      k === "cached" ? "kept from an earlier visit" : k !== "measured" ? "skipped: default kernels"
        : info.cached ? "measured once; kept for next time" : "measured; not kept (no storage)");
    const secs = (t) => `${((performance.now() - (t ?? t0)) / 1000).toFixed(1)} s`;
    phase("upload", "done", `${mib(info.size)} checked and on the GPU in ${secs(tUpload)}`, 1);
    const name = PUBLIC_MODELS.find((m) => m.url === url)?.name ?? info.model.name;
    loaded = { url, name };
    const ready = `Ready: ${name} on ${gpuLabel}`;
    phase("ready", "done", `${name} · ${info.model.arch} · context ${info.model.context} tokens · loaded in ${secs(t0)}`);
    status(ready);
    newChat();
    $("prompt").focus();
  } catch (e) {
    const li = document.querySelector("#phases li.active");
    if (String(e?.message) === "interrupted") {
      li && phase(li.dataset.phase, "failed", "stopped");
      status("Loading stopped. Load again to continue where it stopped.");
    } else {
      li && phase(li.dataset.phase, "failed");
      const kind = await showError(e, url);
      status(`Load failed (${kind}): see above.`);
    }
  } finally {
    busy = false;
    controls();
    refreshCache();
  }
}

// --- Chat -------------------------------------------------------------------------------------

function bubble(role, text) {
  const chat = $("chat");
  chat.querySelector(".empty")?.remove();
  const b = document.createElement("div");
  b.className = `bubble ${role}`;
  if (role === "user") b.textContent = text;
  chat.append(b);
  chat.scrollTop = chat.scrollHeight;
  return b;
}

/** Renders `text` into bubble `b` at most once a frame (a reply arrives token by token). */
function renderer(b) {
  let text = "";
  let queued = false;
  const draw = () => {
    queued = false;
    const chat = $("chat");
    const atEnd = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 40;
    b.replaceChildren(renderMarkdown(text));
    if (atEnd) chat.scrollTop = chat.scrollHeight;
  };
  return {
    set(t) {
      text = t;
      if (!queued) {
        queued = true;
        requestAnimationFrame(draw);
      }
    },
    flush: draw,
  };
}

const rate = (n, ms) => (n > 0 && ms > 0 ? (n / (ms / 1000)).toFixed(1) : "–");

// One-click samples. The JSON one is structured output: the engine constrains every token to
// the schema (llguidance), so the reply always parses; bounded fields keep it short.
const PERSON = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 40 },
    age: { type: "integer", minimum: 0, maximum: 120 },
    city: { type: "string", maxLength: 40 },
  },
  required: ["name", "age", "city"],
  additionalProperties: false,
};
const SAMPLES = {
  markdown: { text: "Give three tips for writing clear code, as a list, with one short code example." },
  json: {
    text: "Invent a person who lives in a city. Reply with their name, age and city.",
    response_format: { type: "json_schema", json_schema: { name: "person", schema: PERSON } },
  },
};

/** Sends the composer's text, or a sample's (with its response_format). */
async function send(sample) {
  const text = sample?.text ?? $("prompt").value.trim();
  if (!text || busy || !loaded) return;
  if (!sample) $("prompt").value = "";
  messages.push({ role: "user", content: text });
  bubble("user", text);
  const b = bubble("assistant");
  b.classList.add("pending");
  const view = renderer(b);
  // Live regions (the log, the status) speak once the reply is whole, not at every token.
  b.setAttribute("aria-busy", "true");
  $("status").setAttribute("aria-busy", "true");
  busy = true;
  controls();
  const system = $("system").value.trim();
  const request = {
    messages: system ? [{ role: "system", content: system }, ...messages] : [...messages],
    stream: true,
    max_tokens: setting("max_tokens", 512, true),
    temperature: Math.min(2, Math.max(0, setting("temperature", 0.3))),
    top_p: Math.min(1, Math.max(0.01, setting("top_p", 0.9))),
  };
  if (sample?.response_format) request.response_format = sample.response_format;
  // A JSON reply is shown as a code block.
  const shown = sample?.response_format ? (r) => "```json\n" + r + "\n```" : (r) => r;
  status("Reading your message…");
  const t0 = performance.now();
  let tFirst = null;
  let n = 0;
  let reply = "";
  try {
    const stream = await engine.chat.completions.create(request);
    for await (const chunk of stream) {
      const d = chunk.choices[0].delta.content;
      if (d) {
        const now = performance.now();
        tFirst ??= now;
        n++;
        reply += d;
        view.set(shown(reply));
        // Decode speed after the first token (which also carries the prompt's prefill).
        status(`${n} tokens · ${rate(n - 1, now - tFirst)} tok/s · first token ${Math.round(tFirst - t0)} ms`);
      }
      if (chunk.timings) {
        const { usage, timings } = chunk;
        const why = { abort: "Stopped. ", length: "Reached the max tokens. " }[chunk.choices[0].finish_reason] ?? "";
        status(`${why}${usage.completion_tokens} tokens · ${timings.decode_tok_s.toFixed(1)} tok/s · first token ${Math.round(timings.ttft_ms)} ms`);
      }
    }
    messages.push({ role: "assistant", content: reply });
  } catch (e) {
    messages.pop();
    if (e?.name === "DeviceLostError") loaded = null;
    status(`The reply failed: ${e.message}${loaded ? "" : " Load the model again."}`);
  } finally {
    view.flush();
    b.classList.remove("pending");
    b.removeAttribute("aria-busy");
    $("status").removeAttribute("aria-busy");
    busy = false;
    controls();
  }
}

function newChat() {
  messages.length = 0;
  const p = document.createElement("p");
  p.className = "empty";
  p.textContent = loaded ? `${loaded.name} is ready. Say something.` : "Load a model, then say something.";
  $("chat").replaceChildren(p);
}

// --- Cached models ----------------------------------------------------------------------------

async function refreshCache() {
  if (!engine) return;
  try {
    const list = await engine.cache.list();
    $("cache").replaceChildren(
      ...list.map((m) => {
        const li = document.createElement("li");
        const state = m.complete ? "complete" : "partial: resumes on load";
        li.textContent = `${m.url} — ${mib(m.stored_bytes)} of ${mib(m.size)} (${state}) `;
        const del = document.createElement("button");
        del.type = "button";
        del.textContent = "Delete";
        del.setAttribute("aria-label", `Delete ${m.url} from this browser`);
        del.onclick = async () => {
          await engine.cache.delete(m.url);
          refreshCache();
        };
        li.append(del);
        return li;
      }),
    );
    if (list.length === 0) {
      const li = document.createElement("li");
      li.textContent = "None yet: a loaded model is kept here for next time.";
      $("cache").replaceChildren(li);
    }
    const e = await engine.cache.estimate();
    $("quota").textContent = `Storage used by this site: ${mib(e.usage)} of ${mib(e.quota)} available.`;
  } catch (e) {
    if (e?.name === "EngineFilesMissingError") {
      showScreen(screen, "build-missing", buildMissing(e.message));
      status("The engine is not built.");
      controls();
    }
  }
}

// --- Start ------------------------------------------------------------------------------------

$("composer").onsubmit = (e) => {
  e.preventDefault();
  send();
};
$("prompt").onkeydown = (e) => {
  // Enter sends; Shift+Enter (or an input method composing text) makes a new line.
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
};
for (const b of document.querySelectorAll("#samples button")) b.onclick = () => send(SAMPLES[b.dataset.sample]);
$("load").onclick = load;
$("check").onclick = willItRun;
$("stop").onclick = () => engine?.interrupt();
$("reset").onclick = async () => {
  newChat();
  await engine?.resetChat().catch(() => {});
};

const local = await localModels();
const picker = buildPicker($("picker"), $("model"), local, () => ($("willrun").textContent = ""));
const preferred = local.find((m) => /^SmolLM2-135M-Instruct/i.test(m.name))?.url ?? PUBLIC_MODELS[0].url;
picker.select(params.get("model") ?? preferred);

const { adapter, why } = await webgpuAdapter();
if (!adapter) {
  showScreen(screen, "no-webgpu", { ...NO_WEBGPU, paragraphs: [why, ...NO_WEBGPU.paragraphs] });
  status("This browser has no WebGPU: nothing can be loaded here.");
  controls();
} else {
  gpuLabel = describeAdapter(adapter);
  engine = await createEngine();
  controls();
  await refreshCache();
  if (params.has("model") && !screen.dataset.screen) load();
}
