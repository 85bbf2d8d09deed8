// The demo's screens for what stops a model from running: no WebGPU (and the check for it), the
// engine's build missing, a model URL that is not found or may not be read (CORS) or cannot be
// reached, too little GPU memory or storage, a model Wisp does not support, and any other error.
// Each is a panel with a heading, what happened and what to do, shown in place of a bare status
// line. `classify` maps an engine error or a will-it-run verdict to one of them. Text only:
// messages are set with textContent.

/** Fills `panel` with screen `kind` ({heading, paragraphs, items, code}) and shows it. */
export function showScreen(panel, kind, { heading, paragraphs = [], items = [], code = null, dismissable = true }) {
  const doc = panel.ownerDocument;
  const make = (tag, text) => {
    const e = doc.createElement(tag);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const h = make("h2", heading);
  h.id = "screen-heading";
  const parts = [h, ...paragraphs.map((p) => make("p", p))];
  if (items.length) {
    const ul = make("ul");
    ul.append(...items.map((t) => make("li", t)));
    parts.push(ul);
  }
  if (code) {
    const pre = make("pre");
    pre.append(make("code", code));
    parts.push(pre);
  }
  if (dismissable) {
    const b = make("button", "Dismiss");
    b.type = "button";
    b.className = "secondary";
    b.onclick = () => hideScreen(panel);
    parts.push(b);
  }
  panel.replaceChildren(...parts);
  panel.dataset.screen = kind;
  panel.hidden = false;
  panel.scrollIntoView?.({ block: "nearest" });
}

export function hideScreen(panel) {
  panel.hidden = true;
  panel.replaceChildren();
  delete panel.dataset.screen;
}

/**
 * { adapter } or { why }, asked on the page's own thread before the engine starts: the
 * no-WebGPU screen needs no worker or wasm to say so.
 */
export async function webgpuAdapter() {
  if (!("gpu" in navigator) || !navigator.gpu) return { why: "This browser has no WebGPU API here (navigator.gpu is missing)." };
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  // An API without an adapter: WebGPU is switched off, or this GPU or driver is blocklisted.
  return adapter ? { adapter } : { why: "This browser has WebGPU but found no GPU adapter to use (switched off, or this GPU or its driver is blocklisted)." };
}

/** "SwiftShader (WebGPU, no shader-f16)": the adapter as a person would name it. */
export function describeAdapter(a) {
  const i = a.info ?? {};
  const known = { swiftshader: "SwiftShader" };
  const cap = (s) => (s ? s[0].toUpperCase() + s.slice(1) : "");
  const name = i.description || known[i.architecture] || [cap(i.vendor), i.architecture].filter(Boolean).join(" ") || "this GPU";
  return `${name} (WebGPU${a.features.has("shader-f16") ? ", shader-f16" : ", no shader-f16"})`;
}

export const NO_WEBGPU = {
  heading: "This browser has no WebGPU",
  paragraphs: [
    "Wisp runs the model on your device's GPU through WebGPU, and this browser does not offer it here.",
    "Browsers with WebGPU:",
  ],
  items: [
    "Chrome and Edge 113 or newer on Windows, macOS and ChromeOS",
    "Chrome 121 or newer on Android",
    "Safari 26 on macOS, iOS and iPadOS",
    "Firefox 141 or newer on Windows",
    "Chrome on Linux: turn on chrome://flags/#enable-unsafe-webgpu, or start it with --enable-unsafe-webgpu --enable-features=Vulkan",
  ],
  dismissable: false,
};

export function buildMissing(message) {
  return {
    heading: "The engine's files are missing",
    paragraphs: [
      message[0].toUpperCase() + message.slice(1),
      "This page runs the wasm engine that scripts/build-web.sh builds into www/wisp-llm/dist/. Run it in the checkout this page is served from, then reload:",
    ],
    code: "scripts/build-web.sh",
    dismissable: false,
  };
}

const SMALLER = [
  "Pick a smaller model (SmolLM2 135M needs about 100 MB).",
  "Lower the context in Settings: the KV cache grows with it.",
  "Free storage: delete cached models in the list below.",
  "Close other tabs that use the GPU, then try again.",
];

/**
 * The screen for an engine error `message` about model `url`: { kind, screen }. `reachable`
 * (for a failed fetch) says whether the host answered a no-cors request: it did when only CORS
 * withheld the file.
 */
export function classify(message, url, reachable = null) {
  if (/EngineFilesMissing|engine's files are missing/.test(message)) return { kind: "build-missing", screen: buildMissing(message) };
  const http = /answered HTTP (\d{3})/.exec(message);
  if (http && (http[1] === "404" || http[1] === "410")) {
    return {
      kind: "not-found",
      screen: {
        heading: `Model file not found (HTTP ${http[1]})`,
        paragraphs: [`${url} answered HTTP ${http[1]}: there is no file at that address.`, "Check the URL (a Hugging Face file URL has /resolve/ in it, not /blob/), or pick a model from the list."],
      },
    };
  }
  if (/could not fetch|Failed to fetch|NetworkError/.test(message)) {
    const cors = reachable !== false;
    return {
      kind: cors ? "cors" : "unreachable",
      screen: {
        heading: cors ? "The server does not let this page read the file (CORS)" : "The server could not be reached",
        paragraphs: [
          cors
            ? `The host of ${url} answered, but the browser kept its answer from this page: the host does not allow pages of other sites to read the file.`
            : `The browser got no answer from the host of ${url}: check the address and your connection.`,
          "A host that serves models to web pages must send Access-Control-Allow-Origin and allow Range requests; Hugging Face does. Otherwise download the file and serve it yourself, or pick a model from the list.",
        ],
      },
    };
  }
  if (/Range requests/.test(message)) {
    return { kind: "no-range", screen: { heading: "The server cannot send parts of the file", paragraphs: [message, "Wisp downloads models in resumable 16 MiB pieces (HTTP Range requests); serve the file from a host that supports them."] } };
  }
  if (/quota/i.test(message)) {
    return { kind: "memory", screen: { heading: "Not enough storage for this model", paragraphs: [message], items: SMALLER } };
  }
  if (/out of memory|OutOfMemory|binding limit|KV cache|too large|exceeds/i.test(message)) {
    return { kind: "memory", screen: { heading: "Not enough GPU memory for this model", paragraphs: [message], items: SMALLER } };
  }
  if (/answered HTTP (\d{3})/.test(message)) {
    return { kind: "http", screen: { heading: `The server refused the file (HTTP ${http[1]})`, paragraphs: [message] } };
  }
  return { kind: "error", screen: { heading: "The model could not be loaded", paragraphs: [message] } };
}

/** The screen for a will-it-run "no": memory when a reason is about limits, else unsupported. */
export function refusal(reasons) {
  const memory = reasons.some((r) => /binding limit|KV cache|memory|exceeds/i.test(r));
  return memory
    ? { kind: "memory", screen: { heading: "Not enough GPU memory for this model", paragraphs: ["This GPU cannot hold what the model needs:", ...reasons], items: SMALLER } }
    : { kind: "unsupported", screen: { heading: "Wisp cannot run this model", paragraphs: ["Wisp checked the model's header and refuses it, so that it never gives wrong answers silently:", ...reasons, "Pick another model from the list."] } };
}
