// The JS API's answers to inputs nobody expected, table-driven, in headless Chromium on a tiny
// chat model (scripts/gen_tiny_chat_gguf.py: SmolLM2-Instruct's tokenizer and template on
// random weights). Each bad call must reject with an error that names the problem (never a wasm
// trap, never a silent coercion), and the engine must keep working after it. Also: a second
// generate while one runs waits its turn and gives what it gives alone; calls after unload
// reject at once.
// Usage: node www/tests/api.mjs   (after scripts/build-web.sh)
import { startServer, startBrowser, checker, finish, tinyChatModel } from "./harness.mjs";

const TINY = tinyChatModel();
const t = checker();
const { check } = t;
const server = await startServer();
const { browser, open } = await startBrowser();
await finish(t, { browser, server }, "all API tests passed", async () => {
  const page = await open(server.base);
  const results = await page.evaluate(async (url) => {
    const e = await createEngine();
    await e.load(url, { context: 64 });
    const msg = (content) => ({ messages: [{ role: "user", content }] });
    // [what, call, the message must match]
    const cases = [
      ["a number as the prompt", () => e.generate(42), /prompt must be a string or an array of token ids/],
      ["null as the prompt", () => e.generate(null), /prompt must be a string or an array/],
      ["an object as the prompt", () => e.generate({ text: "x" }), /prompt must be a string or an array/],
      ["an empty prompt", () => e.generate(""), /prompt is empty/],
      ["no token ids", () => e.generate([]), /prompt is empty/],
      ["a fractional token id", () => e.generate([1.5, 2]), /prompt token 0 is 1.5/],
      ["a negative token id", () => e.generate([3, -1]), /prompt token 1 is -1/],
      ["a string token id", () => e.generate(["a"]), /prompt token 0 is "a"/],
      ["a token id past the vocabulary", () => e.generate([1, 49152]), /outside the vocabulary/],
      ["options as a string", () => e.generate("x", "fast"), /options must be an object/],
      ["max_tokens NaN", () => e.generate("x", { max_tokens: NaN }), /'max_tokens' must be an integer/],
      ["max_tokens Infinity", () => e.generate("x", { max_tokens: Infinity }), /'max_tokens' must be an integer/],
      ["max_tokens 0", () => e.generate("x", { max_tokens: 0 }), /'max_tokens' is 0: it must be between 1 and/],
      ["max_tokens 1e12", () => e.generate("x", { max_tokens: 1e12 }), /'max_tokens' is 1000000000000: it must be between 1 and/],
      ["temperature as a string", () => e.generate("x", { temperature: "hot" }), /'temperature' must be a finite number/],
      ["temperature -1", () => e.generate("x", { temperature: -1 }), /temperature/],
      ["top_p NaN", () => e.generate("x", { top_p: NaN }), /'top_p' must be a finite number/],
      ["top_k -1", () => e.generate("x", { top_k: -1 }), /'top_k' is -1: it must be between 0 and/],
      ["seed -1", () => e.generate("x", { seed: -1 }), /'seed' is -1: it must be between 0 and/],
      ["seed 1.5", () => e.generate("x", { seed: 1.5 }), /'seed' must be an integer/],
      ["onToken not a function", () => e.generate("x", { onToken: 5 }), /'onToken' must be a function/],
      ["stop as a number", () => e.generate("x", { stop: 5 }), /invalid type/],
      ["no request", () => e.chat.completions.create(), /needs a request object/],
      ["messages as a string", () => e.chat.completions.create({ messages: "hi" }), /'messages' must be a non-empty array/],
      ["no messages", () => e.chat.completions.create({}), /'messages' must be a non-empty array/],
      ["empty messages", () => e.chat.completions.create({ messages: [] }), /'messages' must be a non-empty array/],
      ["a message without a role", () => e.chat.completions.create({ messages: [{ content: "x" }] }), /messages\[0\].role/],
      ["an unknown role", () => e.chat.completions.create({ messages: [{ role: "wizard", content: "x" }] }), /messages\[0\].role is "wizard"/],
      ["content as an object", () => e.chat.completions.create(msg({ a: 1 })), /messages\[0\].content must be a string/],
      ["an image part", () => e.chat.completions.create(msg([{ type: "image_url", image_url: {} }])), /only text/],
      ["max_tokens as a string in a request", () => e.chat.completions.create({ ...msg("x"), max_tokens: "9" }), /'max_tokens' must be an integer/],
      ["response_format unknown", () => e.chat.completions.create({ ...msg("x"), response_format: { type: "yaml" } }), /response_format/],
      ["a schema that is not one", () => e.chat.completions.create({ ...msg("x"), response_format: { type: "json_schema", json_schema: { schema: { type: "integr" } } } }), /schema/],
      ["min_p 1.5", () => e.generate("x", { min_p: 1.5 }), /min_p/],
      ["top_p 2", () => e.generate("x", { top_p: 2 }), /top_p/],
      ["a prompt longer than the context", () => e.generate("word ".repeat(100), { max_tokens: 1 }), /context/],
    ];
    const out = [];
    for (const [what, call, want] of cases) {
      try {
        await call();
        out.push([what, false, "resolved"]);
      } catch (err) {
        out.push([what, want.test(err.message) && !/memory access|unreachable|RuntimeError/.test(err.message), err.message]);
      }
    }
    // The engine still works after all that, and text parts are joined.
    const alone = await e.generate("Hello", { max_tokens: 3, temperature: 0 });
    const parts = await e.chat.completions.create({ ...msg([{ type: "text", text: "Hel" }, { type: "text", text: "lo" }]), max_tokens: 2, temperature: 0 });
    const whole = await e.chat.completions.create({ ...msg("Hello"), max_tokens: 2, temperature: 0 });
    out.push(["still works after the rejections", alone.token_ids.length === 3, JSON.stringify(alone.token_ids)]);
    out.push(["text parts are joined", parts.choices[0].message.content === whole.choices[0].message.content, parts.choices[0].message.content]);
    // A second generate while one runs: it waits its turn and gives what it gives alone.
    const [a, b] = await Promise.all([
      e.generate("Hello", { max_tokens: 3, temperature: 0 }),
      e.generate("Goodbye", { max_tokens: 3, temperature: 0 }),
    ]);
    const bAlone = await e.generate("Goodbye", { max_tokens: 3, temperature: 0 });
    out.push(["generate while another runs: both answer as alone",
      JSON.stringify(a.token_ids) === JSON.stringify(alone.token_ids) && JSON.stringify(b.token_ids) === JSON.stringify(bAlone.token_ids),
      `${JSON.stringify(a.token_ids)} ${JSON.stringify(b.token_ids)}`]);
    // Bad loads, on an engine of their own.
    const f = await createEngine();
    const loads = [
      ["load without a URL", () => f.load(), /url must be a string/],
      ["load with context 0", () => f.load(url, { context: 0 }), /'context' must be a positive integer/],
      ["load with context -5", () => f.load(url, { context: -5 }), /'context' must be a positive integer/],
      ["load with context as a string", () => f.load(url, { context: "big" }), /'context' must be a positive integer/],
      ["load with an unknown precision", () => f.load(url, { precision: "turbo" }), /precision 'turbo'/],
      ["load with weights in an unknown place", () => f.load(url, { weights: "disk" }), /'weights' must be "buffer" or "texture"/],
      ["load of a missing file", () => f.load(url + ".missing"), /HTTP 404/],
      ["load of a page that is not a model", () => f.load(location.href), /not a GGUF file/],
    ];
    for (const [what, call, want] of loads) {
      try {
        await call();
        out.push([what, false, "resolved"]);
      } catch (err) {
        out.push([what, want.test(err.message), err.message]);
      }
    }
    await f.load(url, { context: 32 });
    out.push(["the same engine loads after the failed loads", (await f.generate("Hi", { max_tokens: 1 })).token_ids.length === 1, ""]);
    await f.unload();
    for (const [what, call] of [["generate after unload", () => f.generate("x")], ["load after unload", () => f.load(url)],
      ["chat after unload", () => f.chat.completions.create(msg("x"))]]) {
      try {
        await call();
        out.push([what, false, "resolved"]);
      } catch (err) {
        out.push([what, /unloaded/.test(err.message), err.message]);
      }
    }
    await e.unload();
    return out;
  }, `${server.base}/models/${TINY}`);
  for (const [what, ok, message] of results) check(ok, `${what}: ${message}`);
});
