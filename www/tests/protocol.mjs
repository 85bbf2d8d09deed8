// Unit tests of the main-thread half of the worker protocol (www/wisp-llm/index.js) against a
// scripted stand-in worker, in Node: request/response matching, events routed to the right
// call, errors surfaced as rejections, the OpenAI chunk stream, options forwarded with their
// OpenAI names, interrupt sent out of band. The worker half runs in the browser tests.
import assert from "node:assert/strict";

const sent = [];
let script = null; // (msg, reply) => void: how the stand-in worker answers
globalThis.Worker = class {
  constructor(url, opts) {
    assert.equal(opts.type, "module");
    assert.match(String(url), /worker\.js$/);
    this.onmessage = null;
  }
  postMessage(msg) {
    sent.push(msg);
    const reply = (data) => setTimeout(() => this.onmessage({ data }), 0);
    script?.(msg, reply);
  }
  terminate() {
    this.terminated = true;
  }
};
const { createEngine } = await import("../wisp-llm/index.js");

let passed = 0;
async function test(name, f) {
  sent.length = 0;
  await f();
  passed++;
  console.log(`ok   ${name}`);
}

await test("load forwards its options and routes progress events to its own call", async () => {
  const progress = [];
  script = (m, reply) => {
    if (m.op !== "load") return;
    reply({ id: m.id, event: "progress", data: { phase: "download", done: 1, total: 2 } });
    reply({ id: m.id + 1000, event: "progress", data: { phase: "stray" } }); // another call's: ignored
    reply({ id: m.id, done: true, result: { url: m.args.url, context: m.args.options.context } });
  };
  const e = await createEngine({ model: "http://x/m.gguf", context: 99, onProgress: (p) => progress.push(p.phase) });
  assert.deepEqual(progress, ["download"]);
  assert.equal(sent[0].op, "load");
  assert.deepEqual(sent[0].args, { url: "http://x/m.gguf", options: { context: 99 } });
  assert.equal(e.model, "http://x/m.gguf");
});

await test("concurrent calls resolve by id, in any order; errors reject their own call", async () => {
  const e = await createEngine();
  const pending = [];
  script = (m, reply) => pending.push({ m, reply });
  const a = e.generate("A", { max_tokens: 3, temperature: 0, stop: "\n", repetition_penalty: 1.1 });
  const b = e.generate([1, 2, 3], { max_tokens: 1 });
  const c = e.cache.list();
  assert.equal(pending.length, 3);
  const [pa, pb, pc] = pending;
  assert.equal(pa.m.op, "generate");
  assert.deepEqual(pa.m.args.options, {
    max_tokens: 3, temperature: 0, top_p: undefined, top_k: undefined, min_p: undefined, seed: undefined,
    repetition_penalty: 1.1, stop: ["\n"], response_format: undefined,
  });
  assert.equal(pb.m.op, "generateIds");
  assert.deepEqual(pb.m.args.ids, [1, 2, 3]);
  pc.reply({ id: pc.m.id, done: true, result: [{ url: "u" }] });
  pb.reply({ id: pb.m.id, done: true, error: "context full: 9 positions needed, the context holds 8" });
  pa.reply({ id: pa.m.id, done: true, result: { text: "x" } });
  assert.deepEqual(await c, [{ url: "u" }]);
  await assert.rejects(b, /context full/);
  assert.deepEqual(await a, { text: "x" });
});

await test("streamed chat: OpenAI chunks, role first, finish and usage last", async () => {
  const e = await createEngine({});
  script = (m, reply) => {
    if (m.op !== "chat") return;
    assert.deepEqual(m.args.messages, [{ role: "user", content: "Hi" }]);
    reply({ id: m.id, event: "token", data: { id: 5, text: "Hel" } });
    reply({ id: m.id, event: "token", data: { id: 6, text: "" } }); // held back: no chunk
    reply({ id: m.id, event: "token", data: { id: 7, text: "lo" } });
    reply({ id: m.id, done: true, result: { text: "Hello", finish_reason: "stop", usage: { completion_tokens: 3 }, timings: {} } });
  };
  const stream = await e.chat.completions.create({ messages: [{ role: "user", content: "Hi" }], stream: true });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  assert.equal(chunks.length, 3);
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id));
  assert.deepEqual(chunks[0].choices[0].delta, { role: "assistant", content: "Hel" });
  assert.deepEqual(chunks[1].choices[0].delta, { content: "lo" });
  assert.equal(chunks[2].choices[0].finish_reason, "stop");
  assert.deepEqual(chunks[2].usage, { completion_tokens: 3 });
});

await test("non-streamed chat returns one chat.completion; a failing stream throws", async () => {
  const e = await createEngine();
  script = (m, reply) => reply({ id: m.id, done: true, result: { text: "Yes.", finish_reason: "length", usage: {}, timings: {} } });
  const r = await e.chat.completions.create({ messages: [{ role: "user", content: "?" }] });
  assert.equal(r.object, "chat.completion");
  assert.deepEqual(r.choices[0].message, { role: "assistant", content: "Yes." });
  assert.equal(r.choices[0].finish_reason, "length");
  script = (m, reply) => reply({ id: m.id, done: true, error: "device lost" });
  const s = await e.chat.completions.create({ messages: [{ role: "user", content: "?" }], stream: true });
  await assert.rejects(async () => {
    for await (const _ of s);
  }, /device lost/);
});

await test("interrupt goes out at once, outside the request queue; unload ends the worker and rejects pending and later calls", async () => {
  const e = await createEngine();
  script = null;
  const g = e.generate("long");
  e.interrupt();
  assert.deepEqual(sent.map((m) => m.op), ["generate", "interrupt"]);
  await e.unload();
  assert.equal(e.proxy.worker.terminated, true);
  await assert.rejects(g, /unloaded/);
  await assert.rejects(e.generate("again"), /unloaded/);
});

console.log(`${passed} protocol tests passed`);
