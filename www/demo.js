// The demo page: pick a model URL, check it, download (resumable) and load it, then chat with
// streamed output, tok/s and time to first token, a stop button and the cache list.
import { createEngine } from "./wisp-llm/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
$("model").value = params.get("model") ?? new URL("/models/SmolLM2-135M-Instruct.Q4_1.gguf", location.href).href; // instruction-tuned: the default model (Gemma 3 270M) is a base model

const engine = await createEngine();
const messages = [];
let busy = false;

const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const status = (s) => ($("status").textContent = s);

async function refreshCache() {
  const list = await engine.cache.list();
  $("cache").replaceChildren(
    ...list.map((m) => {
      const li = document.createElement("li");
      li.textContent = `${m.url} — ${mib(m.stored_bytes)} of ${mib(m.size)} ${m.complete ? "(complete)" : "(partial: resumes on load)"} `;
      const del = document.createElement("button");
      del.textContent = "Delete";
      del.onclick = async () => {
        await engine.cache.delete(m.url);
        refreshCache();
      };
      li.append(del);
      return li;
    }),
  );
  const e = await engine.cache.estimate();
  $("quota").textContent = `storage used ${mib(e.usage)} of ${mib(e.quota)}`;
}

async function willItRun() {
  $("willrun").textContent = "reading the model's header…";
  try {
    const r = await engine.willItRun($("model").value);
    $("willrun").className = r.ok ? "yes" : "no";
    $("willrun").textContent = r.ok
      ? `Will it run? Yes: ${r.needs.architecture}, ${mib(r.needs.gpu_bytes_estimate)} of GPU memory, largest tensor ${mib(r.needs.largest_tensor.bytes)}, on ${r.adapter.name || "this browser's WebGPU adapter"} (${r.adapter.tier}).`
      : `Will it run? No: ${r.reasons.join("; ")}`;
  } catch (e) {
    $("willrun").className = "no";
    $("willrun").textContent = `Will it run? Cannot tell: ${e.message}`;
  }
}

async function load() {
  busy = true;
  $("send").disabled = true;
  $("stop").disabled = false;
  try {
    const info = await engine.load($("model").value, {
      context: 2048,
      onProgress: (p) => {
        if (p.phase === "download") {
          $("dl").value = p.done / p.total;
          status(`downloading ${mib(p.done)} / ${mib(p.total)} at ${mib(p.rate)}/s${p.resumed_from_chunk ? ` (resumed at chunk ${p.resumed_from_chunk})` : ""}`);
        } else if (p.phase === "load") {
          $("dl").value = 1;
          $("up").value = p.done / p.total;
          status(`uploading to the GPU ${mib(p.done)} / ${mib(p.total)}`);
        } else if (p.message) {
          status(p.message);
        }
      },
    });
    status(`ready: ${info.model.arch} on ${info.adapter.name || "WebGPU"} (${info.adapter.tier}, ${info.template} chat template)`);
    $("send").disabled = false;
  } catch (e) {
    status(`load failed: ${e.message}`);
  } finally {
    busy = false;
    $("stop").disabled = true;
    refreshCache();
  }
}

async function send() {
  const text = $("prompt").value.trim();
  if (!text || busy) return;
  $("prompt").value = "";
  messages.push({ role: "user", content: text });
  const u = document.createElement("div");
  u.className = "user";
  u.textContent = text;
  const a = document.createElement("div");
  a.className = "assistant";
  $("chat").append(u, a);
  busy = true;
  $("send").disabled = true;
  $("stop").disabled = false;
  status("thinking…");
  try {
    const stream = await engine.chat.completions.create({ messages, stream: true, max_tokens: 64, temperature: 0 });
    let reply = "";
    for await (const chunk of stream) {
      reply += chunk.choices[0].delta.content ?? "";
      a.textContent = reply;
      if (chunk.timings) {
        status(`${chunk.usage.completion_tokens} tokens, ${chunk.timings.decode_tok_s.toFixed(2)} tok/s, time to first token ${chunk.timings.ttft_ms.toFixed(0)} ms (${chunk.choices[0].finish_reason})`);
      }
    }
    messages.push({ role: "assistant", content: reply });
  } catch (e) {
    status(`generation failed: ${e.message}`);
  } finally {
    busy = false;
    $("send").disabled = false;
    $("stop").disabled = true;
  }
}

$("check").onclick = willItRun;
$("load").onclick = load;
$("send").onclick = send;
$("prompt").onkeydown = (e) => e.key === "Enter" && send();
$("stop").onclick = () => engine.interrupt();
$("reset").onclick = async () => {
  messages.length = 0;
  $("chat").replaceChildren();
  await engine.resetChat().catch(() => {});
};
refreshCache();
willItRun();
if (params.has("model")) load();
