// The demo page (www/index.html) in headless Chromium on SwiftShader, screen by screen, checked
// by structure and text (each screen's screenshot goes to $WISP_ARTIFACTS):
//  1. ready + chat: the tiny chat model picked and loaded with each phase named (measure on the
//     first load in a fresh profile), Enter sends and Shift+Enter makes a new line, user and
//     assistant bubbles, live tok/s and time to first token, Stop ends a long reply, the
//     structured-output sample's reply parses and follows its schema;
//  2. the Markdown renderer given hostile input builds no img/script, runs nothing, keeps a
//     javascript: link dead, and still renders code blocks and lists;
//  3. no WebGPU (navigator.gpu deleted): the screen lists browsers and the Linux flag; Load off;
//  4. the engine's build missing (www/ copied without wisp-llm/dist): the screen names
//     scripts/build-web.sh, and serve.mjs warned at start;
//  5. a 404 URL, 6. a server that sends no CORS headers, and one that is not there;
//  7. a context whose KV cache exceeds the binding limit: the memory screen;
//  8. a phone (390×844): no sideways scrolling, the composer in reach; then ?model= loads at
//     once, finding the file stored and the GPU measured;
//  9. axe-core on the ready and no-WebGPU screens: no serious or critical violations;
// 10. no console error or page error in 1, 2, 8 and the ?model= load.
// Usage: node www/tests/demo.mjs   (after scripts/build-web.sh)
import { cpSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join, sep } from "node:path";
import { tmpdir } from "node:os";
import { cache, checker, finish, repo, startBrowser, startServer, tinyChatModel } from "./harness.mjs";

const artifacts = process.env.WISP_ARTIFACTS ?? join(tmpdir(), "wisp-artifacts");
mkdirSync(artifacts, { recursive: true });
const AXE = join(cache, "tools/node/node_modules/axe-core/axe.min.js");
const t = checker();
const server = await startServer();
const { browser, context } = await startBrowser();
const tiny = `${server.base}/models/${tinyChatModel()}`;
const extra = []; // servers and temp dirs to clean up

const shot = async (page, name) => {
  const path = join(artifacts, `demo-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
};
const text = (page, sel) => page.textContent(sel).then((s) => s.replace(/\s+/g, " ").trim());
/** A new page on the demo; console errors and page errors land in `errors` when given. */
async function demoPage(ctx, query = "", errors = null) {
  const page = await ctx.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") {
      console.log(`  [console error] ${m.text()}`);
      errors?.push(m.text());
    }
  });
  page.on("pageerror", (e) => {
    console.log(`  [page error] ${e}`);
    errors?.push(String(e));
  });
  await page.goto(`${server.base}/${query}`);
  return page;
}
/** axe-core's serious and critical violations on the page as it stands. */
async function axe(page) {
  await page.addScriptTag({ path: AXE });
  const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}
/** Loads `url` through the URL field; resolves with the screen's kind, or null once ready. */
async function loadUrl(page, url) {
  await page.fill("#model", url);
  await page.click("#load");
  await page.waitForSelector("#screen:not([hidden]), #phases li[data-phase=ready].done", { timeout: 120_000 });
  return page.evaluate(() => document.getElementById("screen").dataset.screen ?? null);
}

await finish(t, { browser, server }, "the demo page passed", async () => {
  try {
    await screens();
  } finally {
    for (const x of extra) x.stop();
  }
});

async function screens() {
  // 1. Ready + chat, in this fresh profile (the kernel measurement happens once).
  const errors = [];
  const page = await demoPage(context, "", errors);
  await page.waitForSelector(`#picker input[type=radio][value="${tiny}"]`);
  const picker = await text(page, "#picker");
  t.check(/on this machine/.test(picker) && /SmolLM2 135M Instruct/.test(picker) && /tested/.test(picker) &&
    /Qwen2\.5 0\.5B/.test(picker) && /not yet run end to end/.test(picker) && /Any GGUF URL/.test(picker),
    "the picker lists this machine's models first, the public ones honestly labelled, and any URL");
  await page.check(`#picker input[type=radio][value="${tiny}"]`);
  t.check((await page.inputValue("#model")) === tiny, "picking a model puts its URL in the field");
  // Every state each phase goes through, in order.
  await page.evaluate(() => {
    window.phaseLog = [];
    new MutationObserver((ms) => ms.forEach((m) => window.phaseLog.push(`${m.target.dataset.phase}:${m.target.className}`)))
      .observe(document.getElementById("phases"), { attributes: true, subtree: true, attributeFilter: ["class"] });
  });
  const t0 = Date.now();
  await page.click("#load");
  await page.waitForSelector("#phases li[data-phase=ready].done", { timeout: 150_000 });
  const phases = await page.evaluate(() => window.phaseLog);
  console.log(`[${t.secs()} s] loaded in ${((Date.now() - t0) / 1000).toFixed(1)} s; phases ${phases.join(" ")}`);
  const seen = (s) => phases.includes(s);
  t.check(seen("download:active") && seen("download:done") && seen("upload:active") && seen("upload:done"),
    "the download and GPU-upload phases were shown as they happened");
  t.check(seen("measure:active") && /measured once; kept for next time/.test(await text(page, "#phases [data-phase=measure]")),
    "the first load in a fresh profile shows the one-time GPU measurement");
  const ready = await text(page, "#status");
  t.check(/^Ready: wisp-test-tiny-chat\.gguf on SwiftShader \(WebGPU, no shader-f16\)/.test(ready), `the ready line names the model and adapter: ${ready}`);
  // On one line, and not spilling over the bar beside it.
  const oneLine = () => page.$$eval("#phases .phase-label", (ls) => ls.every((l) =>
    l.getBoundingClientRect().height < 1.6 * parseFloat(getComputedStyle(l).lineHeight) && l.scrollWidth <= l.clientWidth + 1));
  t.check(await oneLine(), "no phase label (\"GPU upload\" among them) wraps or overflows");
  console.log(`  screenshot ${await shot(page, "ready")}`);

  // Enter sends; Shift+Enter makes a new line.
  await page.click("#prompt");
  await page.keyboard.type("first line");
  await page.keyboard.press("Shift+Enter");
  await page.keyboard.type("second line");
  t.check((await page.inputValue("#prompt")) === "first line\nsecond line" && (await page.$$(".bubble")).length === 0,
    "Shift+Enter makes a new line and sends nothing");
  await page.click("summary");
  await page.fill("#max_tokens", "12");
  await page.click("#prompt");
  await page.keyboard.press("Enter");
  await page.waitForSelector(".bubble.assistant:not(.pending)", { timeout: 60_000 });
  await page.waitForFunction(() => /tok\/s/.test(document.getElementById("status").textContent));
  const bubbles = await page.$$eval(".bubble", (bs) => bs.map((b) => {
    const r = b.getBoundingClientRect();
    const c = document.getElementById("chat").getBoundingClientRect();
    return { cls: b.className, text: b.textContent, left: r.left - c.left, right: c.right - r.right };
  }));
  console.log(`[${t.secs()} s] bubbles ${JSON.stringify(bubbles)}`);
  const [u, a] = bubbles;
  t.check(bubbles.length === 2 && /user/.test(u.cls) && u.text === "first line\nsecond line" && /assistant/.test(a.cls) && a.text.length > 0,
    "Enter sent the message: a user bubble, then the assistant's reply");
  t.check(u.right < 20 && u.left > 40 && a.left < 20, "the user's bubble sits right, the assistant's left");
  const done = await text(page, "#status");
  t.check(/^(Reached the max tokens\. )?\d+ tokens · [\d.]+ tok\/s · first token \d+ ms$/.test(done), `tokens, tok/s and time to first token: ${done}`);

  // A long reply, its tok/s live while it streams, stopped by Stop.
  await page.fill("#max_tokens", "4000");
  await page.fill("#prompt", "Tell me a very long story.");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelector(".bubble.assistant.pending") &&
    /^\d+ tokens · [\d.]+ tok\/s · first token \d+ ms$/.test(document.getElementById("status").textContent) &&
    parseInt(document.getElementById("status").textContent, 10) >= 5, null, { timeout: 60_000 });
  const live = await text(page, "#status");
  t.check(await page.isEnabled("#stop"), `while the reply streams the status is live (${live}) and Stop is enabled`);
  await page.click("#stop");
  await page.waitForSelector(".bubble.assistant:nth-of-type(4):not(.pending)", { timeout: 30_000 });
  const stopped = await text(page, "#status");
  const n = parseInt(/(\d+) tokens/.exec(stopped)?.[1] ?? "0", 10);
  t.check(/^Stopped\. \d+ tokens · [\d.]+ tok\/s · first token \d+ ms$/.test(stopped) && n < 4000, `Stop ended the long reply: ${stopped}`);
  t.check(await page.isEnabled("#send") && await page.isDisabled("#stop"), "and Send works again");
  // The structured-output sample: one click, and the reply (a JSON code block) parses and
  // follows the sample's schema, whatever the (random-weight) model would have said.
  await page.fill("#max_tokens", "400");
  await page.click("button[data-sample=json]");
  await page.waitForSelector(".bubble.assistant:nth-of-type(6):not(.pending)", { timeout: 60_000 });
  const jsonReply = await page.$eval(".bubble.assistant:nth-of-type(6)", (b) => b.querySelector("pre code")?.textContent ?? null);
  let person = null;
  try {
    person = JSON.parse(jsonReply);
  } catch {}
  console.log(`[${t.secs()} s] structured output sample: ${jsonReply}`);
  t.check(person !== null && Object.keys(person).join() === "name,age,city" && typeof person.name === "string" &&
    Number.isInteger(person.age) && person.age >= 0 && person.age <= 120 && typeof person.city === "string",
    "the JSON sample's reply is a code block that parses and follows its schema");
  console.log(`  screenshot ${await shot(page, "chat")}`);
  const axeReady = await axe(page);
  t.check(axeReady.length === 0, `axe-core on the ready screen: no serious or critical violations ${JSON.stringify(axeReady)}`);

  // 2. The Markdown renderer with hostile input.
  const md = await page.evaluate(async () => {
    const { renderMarkdown } = await import("/markdown.js");
    const input = [
      'Hi <img src=x onerror="window.pwned=1"> and <script>window.pwned=2</script>.',
      "**bold**, *italic*, `a<b>c` and [x](javascript:alert(1)) and [site](https://example.com/a?b=1).",
      "![pic](https://example.com/p.png)",
      "```html", '<img src=x onerror="window.pwned=3">', "```",
      "- one", "- two <b>2</b>", "",
      "1. first", "2. second",
    ].join("\n");
    const host = document.createElement("div");
    document.body.append(host);
    host.append(renderMarkdown(input));
    await new Promise((r) => setTimeout(r, 300)); // time for an image error handler to run
    const all = [...host.querySelectorAll("*")];
    const out = {
      tags: [...new Set(all.map((e) => e.tagName.toLowerCase()))].sort(),
      handlers: all.filter((e) => [...e.attributes].some((a) => a.name.startsWith("on"))).length,
      pwned: window.pwned,
      links: [...host.querySelectorAll("a")].map((a) => ({ href: a.getAttribute("href"), rel: a.rel, text: a.textContent })),
      code: host.querySelector("pre > code")?.textContent,
      inline: [...host.querySelectorAll(":not(pre) > code")].map((c) => c.textContent),
      items: [...host.querySelectorAll("ul > li, ol > li")].map((l) => l.textContent),
      text: host.textContent,
    };
    host.remove();
    return out;
  });
  console.log(`[${t.secs()} s] markdown: ${JSON.stringify(md)}`);
  t.check(!md.tags.includes("img") && !md.tags.includes("script") && !md.tags.includes("b") && md.handlers === 0 && md.pwned === undefined,
    `no img, script or other HTML element came from the text and nothing ran: tags ${md.tags.join(",")}`);
  t.check(JSON.stringify(md.links.map((l) => l.href)) === '["https://example.com/a?b=1","https://example.com/p.png"]' &&
    md.links.every((l) => /noopener/.test(l.rel)), "only https links are live (rel=noopener), an image only a link to it; javascript: is not");
  t.check(md.text.includes("[x](javascript:alert(1))") && md.text.includes('<img src=x onerror="window.pwned=1">') && md.text.includes("<script>window.pwned=2</script>"),
    "the hostile text is kept, as text");
  t.check(md.code === '<img src=x onerror="window.pwned=3">' && md.inline.includes("a<b>c"), "a ``` block is a <pre><code>, inline code is <code>");
  t.check(md.tags.includes("ul") && md.tags.includes("ol") && md.tags.includes("strong") && md.tags.includes("em") &&
    JSON.stringify(md.items) === JSON.stringify(["one", "two <b>2</b>", "first", "second"]), "lists, bold and italic render");

  // 8. A phone.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  const phone = await page.evaluate(() => ({
    scroll: document.scrollingElement.scrollWidth,
    width: innerWidth,
    outside: [...document.querySelectorAll("button, input, textarea, summary")]
      .filter((e) => e.offsetParent && e.getBoundingClientRect().right > innerWidth + 0.5).map((e) => e.id || e.textContent),
  }));
  await page.locator("#send").scrollIntoViewIfNeeded();
  const send = await page.locator("#send").boundingBox();
  t.check(phone.scroll <= phone.width && phone.outside.length === 0,
    `at 390×844 nothing scrolls sideways (${phone.scroll} ≤ ${phone.width}) and no control is cut off ${JSON.stringify(phone.outside)}`);
  t.check(await page.isVisible("#send") && send && send.x >= 0 && send.x + send.width <= 390 && send.y >= 0 && send.y + send.height <= 844,
    `the send button is in view on the phone: ${JSON.stringify(send)}`);
  t.check(await oneLine(), "no phase label wraps or overflows on the phone");
  console.log(`  screenshot ${await shot(page, "phone")}`);

  await page.close();

  // ?model= preselects and loads; the second load finds the file stored and the GPU measured.
  const again = await demoPage(context, `?model=${encodeURIComponent(tiny)}`, errors);
  await again.waitForSelector("#phases li[data-phase=ready].done", { timeout: 60_000 });
  const phases2 = await text(again, "#phases");
  t.check(await again.isChecked(`#picker input[type=radio][value="${tiny}"]`) && /already stored in this browser/.test(phases2) &&
    /kept from an earlier visit/.test(phases2) && /^Ready: /.test(await text(again, "#status")),
    `?model= loads at once; the second load downloads nothing and measures nothing: ${phases2}`);
  await again.close();

  // 10. No console errors in the normal flow.
  t.check(errors.length === 0, `no console or page errors while loading, chatting and on the phone: ${JSON.stringify(errors)}`);

  // 5. A URL that does not exist.
  const p404 = await demoPage(context);
  const missing = `${server.base}/models/no-such-model.gguf`;
  const k404 = await loadUrl(p404, missing);
  const s404 = await text(p404, "#screen");
  t.check(k404 === "not-found" && /not found \(HTTP 404\)/.test(s404) && s404.includes(missing), `a 404 shows the not-found screen: ${s404}`);
  console.log(`  screenshot ${await shot(p404, "404")}`);

  // 6. A server that sends no CORS headers (another port is another origin), and none at all.
  let other;
  do extra.push((other = await startServer()));
  while (other.base === server.base);
  const kCors = await loadUrl(p404, `${other.base}/models/${tinyChatModel()}`);
  const sCors = await text(p404, "#screen");
  t.check(kCors === "cors" && /CORS/.test(sCors) && /Access-Control-Allow-Origin/.test(sCors) && /Range/.test(sCors),
    `a model on a server without CORS headers shows the CORS screen: ${sCors}`);
  console.log(`  screenshot ${await shot(p404, "cors")}`);
  other.stop();
  await new Promise((r) => setTimeout(r, 300));
  const kGone = await loadUrl(p404, `${other.base}/models/${tinyChatModel()}`);
  t.check(kGone === "unreachable" && /could not be reached/.test(await text(p404, "#screen")), "a server that is not there shows the unreachable screen");

  // 7. A context whose KV cache outgrows the binding limit.
  await p404.check(`#picker input[type=radio][value="${tiny}"]`);
  await p404.click("summary");
  await p404.fill("#context", String(2 ** 24));
  await p404.click("#load");
  await p404.waitForSelector("#screen:not([hidden])", { timeout: 60_000 });
  const sMem = await text(p404, "#screen");
  t.check((await p404.getAttribute("#screen", "data-screen")) === "memory" && /Not enough GPU memory/.test(sMem) &&
    /binding limit/.test(sMem) && /smaller model/.test(sMem) && /context/.test(sMem) && /delete cached models/.test(sMem),
    `a KV cache over the binding limit shows the memory screen with what to do: ${sMem}`);
  console.log(`  screenshot ${await shot(p404, "memory")}`);
  await p404.close();

  // 3. No WebGPU.
  const noGpu = await browser.newContext();
  await noGpu.addInitScript(() => {
    delete Navigator.prototype.gpu;
    if (globalThis.WorkerNavigator) delete WorkerNavigator.prototype.gpu;
  });
  const pNo = await demoPage(noGpu);
  await pNo.waitForSelector("#screen[data-screen=no-webgpu]");
  const sNo = await text(pNo, "#screen");
  t.check(/no WebGPU/.test(sNo) && /Chrome and Edge 113/.test(sNo) && /Android/.test(sNo) && /Safari 26/.test(sNo) && /Firefox 141/.test(sNo) &&
    sNo.includes("chrome://flags/#enable-unsafe-webgpu") && sNo.includes("--enable-features=Vulkan"),
    `without navigator.gpu the no-WebGPU screen lists browsers and the Linux flag: ${sNo}`);
  t.check(await pNo.isDisabled("#load") && await pNo.isDisabled("#check"), "and Load is disabled");
  console.log(`  screenshot ${await shot(pNo, "no-webgpu")}`);
  const axeNo = await axe(pNo);
  t.check(axeNo.length === 0, `axe-core on the no-WebGPU screen: no serious or critical violations ${JSON.stringify(axeNo)}`);
  await noGpu.close();

  // 4. The engine's build missing: www/ copied without wisp-llm/dist.
  const bare = mkdtempSync(join(tmpdir(), "wisp-www-"));
  extra.push({ stop: () => rmSync(bare, { recursive: true, force: true }) });
  cpSync(join(repo, "www"), bare, { recursive: true, filter: (src) => !src.includes(`${sep}dist`) && !src.includes("node_modules") });
  const unbuilt = await startServer({ root: bare });
  extra.push(unbuilt);
  t.check(/wisp_bg\.wasm is missing: run scripts\/build-web\.sh first/.test(unbuilt.stderr()), "serve.mjs warns at start that the build is missing");
  const pBare = await context.newPage();
  await pBare.goto(`${unbuilt.base}/`);
  await pBare.waitForSelector("#screen[data-screen=build-missing]", { timeout: 30_000 });
  const sBare = await text(pBare, "#screen");
  t.check(/engine's files are missing/.test(sBare) && /HTTP 404/.test(sBare) && sBare.includes("scripts/build-web.sh") && await pBare.isDisabled("#load"),
    `without the build the page says which file is missing and to run scripts/build-web.sh: ${sBare}`);
  console.log(`  screenshot ${await shot(pBare, "build-missing")}`);
  await pBare.close();
}
