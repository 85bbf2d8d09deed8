"""`wisp serve` against the official `openai` Python client, on loopback, with SmolLM2-135M-Instruct.

Usage: python tests/serve_openai.py WISP_BINARY MODEL.gguf   (scripts/test.sh runs it from the venv
that scripts/setup.sh makes, with openai and jsonschema installed).

Three servers: A (context 1024, an API key) for the endpoints, errors, logprobs, structured output,
concurrency, the prefix cache and disconnects; B (context 160, --context-shift) for a chat twice
as long as its context; C (--draft lookup) for speculative decoding, whose answers must equal A's.
Every answer is greedy (temperature 0), so answers are compared exactly.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import jsonschema
import openai

WISP, MODEL = sys.argv[1], sys.argv[2]
KEY = "sk-wisp-test"
failures = []
T0 = time.time()


def check(ok, what):
    print(f"[{time.time() - T0:6.1f} s] {'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*args):
    port = free_port()
    env = dict(os.environ, WISP_ADAPTER=os.environ.get("WISP_ADAPTER", "llvmpipe"))
    p = subprocess.Popen([WISP, "serve", "-m", MODEL, "--port", str(port), *args], env=env,
                         stderr=subprocess.PIPE, text=True)
    # The server says where it listens once the model is loaded.
    for line in p.stderr:
        if "listening on" in line:
            break
    else:
        raise SystemExit(f"wisp serve did not start (exit {p.wait()})")
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    return p, f"http://127.0.0.1:{port}"


def health(base):
    with urllib.request.urlopen(f"{base}/health") as r:
        return json.load(r)


def raw_post(base, path, body, key=KEY):
    req = urllib.request.Request(f"{base}{path}", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def chat(client, content, system=None, **kw):
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
    kw.setdefault("max_tokens", 24)
    kw.setdefault("temperature", 0)
    return client.chat.completions.create(model="smollm2", messages=msgs, **kw)


server_a, base_a = start("--ctx", "1024", "--api-key", KEY)
server_b, base_b = start("--ctx", "160", "--context-shift", "--queue", "1")
server_c, base_c = start("--ctx", "1024", "--draft", "lookup", "--draft-max", "4")
try:
    client = openai.OpenAI(base_url=f"{base_a}/v1", api_key=KEY, max_retries=0, timeout=600)

    # Models and health.
    models = client.models.list()
    check([m.id for m in models.data] == ["SmolLM2-135M-Instruct.Q4_1"], f"models: {[m.id for m in models.data]}")
    check(health(base_a)["status"] == "ok", "health")

    # Chat, whole and streamed: the same greedy text, with usage.
    r = chat(client, "What is the capital of France?")
    text = r.choices[0].message.content
    check("Paris" in text and r.choices[0].finish_reason == "stop", f"chat: {text!r} ({r.choices[0].finish_reason})")
    check(r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
          and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, f"usage {r.usage}")
    stream = chat(client, "What is the capital of France?", stream=True, stream_options={"include_usage": True})
    parts, usage, finish = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            parts.append(c.delta.content or "")
            finish = c.finish_reason or finish
    check("".join(parts) == text and finish == "stop", f"streamed chat equals the whole one: {''.join(parts)!r}")
    check(usage is not None and usage.completion_tokens == r.usage.completion_tokens, f"streamed usage {usage}")

    # Completions, with logprobs: greedy picks the most likely token, so its logprob is the top one.
    c = client.completions.create(model="smollm2", prompt="Once upon a time", max_tokens=6, temperature=0, logprobs=3)
    lp = c.choices[0].logprobs
    check(len(lp.tokens) == 6 and "".join(lp.tokens) == c.choices[0].text, f"completion {c.choices[0].text!r}")
    check(all(t <= 0 for t in lp.token_logprobs)
          and all(abs(max(top.values()) - t) < 1e-6 for top, t in zip(lp.top_logprobs, lp.token_logprobs)),
          "completion logprobs: chosen = most likely, all ≤ 0")
    check(c.choices[0].finish_reason == "length", "max_tokens ends with finish_reason length")

    # Chat logprobs.
    r = chat(client, "Say hello.", logprobs=True, top_logprobs=2, max_tokens=5)
    content = r.choices[0].logprobs.content
    check(len(content) == r.usage.completion_tokens - (r.choices[0].finish_reason == "stop")
          and all(len(t.top_logprobs) == 2 and t.top_logprobs[0].logprob == t.logprob for t in content),
          f"chat logprobs for each token: {[(t.token, round(t.logprob, 3)) for t in content]}")

    # Stop strings: the stop text and what follows are not returned.
    r = chat(client, "What is the capital of France?", stop=["Paris"])
    check("Paris" not in r.choices[0].message.content and r.choices[0].finish_reason == "stop",
          f"stop string: {r.choices[0].message.content!r}")

    # Structured output: a nested schema (objects, arrays, enums, required fields).
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 24},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "role": {"enum": ["admin", "user", "guest"]},
            "address": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24},
                                                          "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
                        "required": ["city", "zip"], "additionalProperties": False},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 1, "maxItems": 3},
        },
        "required": ["name", "age", "role", "address", "tags"],
        "additionalProperties": False,
    }
    for stream in (False, True):
        kw = dict(max_tokens=160, response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}})
        if stream:
            out = "".join(c.choices[0].delta.content or "" for c in chat(client, "Describe a user of our site as JSON.", stream=True, **kw) if c.choices)
        else:
            out = chat(client, "Describe a user of our site as JSON.", **kw).choices[0].message.content
        try:
            jsonschema.validate(json.loads(out), schema)
            check(True, f"json_schema ({'streamed' if stream else 'whole'}) validates: {out}")
        except Exception as e:  # noqa: BLE001
            check(False, f"json_schema output {out!r}: {e}")
    out = chat(client, "Give me a JSON object about Paris.", max_tokens=120, response_format={"type": "json_object"}).choices[0].message.content
    try:
        check(isinstance(json.loads(out), dict), f"json_object parses as an object: {out}")
    except ValueError as e:
        check(False, f"json_object output {out!r}: {e}")

    # Errors, in OpenAI's shape and status.
    status, body = raw_post(base_a, "/v1/chat/completions", b"{not json")
    check(status == 400 and body["error"]["type"] == "invalid_request_error", f"bad JSON: {status} {body}")
    status, body = raw_post(base_a, "/v1/chat/completions", json.dumps({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}).encode())
    check(status == 400 and "invalid type" in body["error"]["message"], f"wrong field type: {status} {body}")
    try:
        chat(client, "hi", temperature=5)
        check(False, "temperature 5 is refused")
    except openai.BadRequestError as e:
        check(e.body["param"] == "temperature", f"temperature out of range: {e.body}")
    try:
        chat(client, "word " * 1500)
        check(False, "a prompt longer than the context is refused")
    except openai.BadRequestError as e:
        check(e.body["code"] == "context_length_exceeded", f"prompt longer than the context: {e.body['message']}")
    try:
        chat(client, "hi", response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "integr"}}})
        check(False, "an invalid schema is refused")
    except openai.BadRequestError as e:
        check(e.body["param"] == "response_format", f"invalid schema: {e.body['message']}")
    try:
        openai.OpenAI(base_url=f"{base_a}/v1", api_key="sk-wrong", max_retries=0).models.list()
        check(False, "a wrong API key is refused")
    except openai.AuthenticationError as e:
        check(e.status_code == 401 and e.body["code"] == "invalid_api_key", f"wrong API key: {e.status_code}")

    # Two concurrent clients get their own answers (queued, served in order).
    questions = ["What is the capital of France?", "What is 2 + 2?"]
    alone = [chat(client, q).choices[0].message.content for q in questions]
    results = [None, None]

    def ask(i):
        results[i] = chat(openai.OpenAI(base_url=f"{base_a}/v1", api_key=KEY, max_retries=0), questions[i]).choices[0].message.content
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    check(results == alone, f"concurrent answers equal the ones asked alone: {results}")

    # Prefix cache: the same system prompt is not prefilled again, and tokens equal a cold run's.
    system = "You are a concise assistant for a travel agency. Answer in one short sentence. " * 3
    cold = chat(client, "Name a city in Italy.", system=system, logprobs=True)
    chat(client, "Something unrelated.")  # the cache now holds another conversation
    cold_again = chat(client, "Name a city in Italy.", system=system, logprobs=True)
    warm = chat(client, "Name a city in Spain.", system=system, logprobs=True)
    warm_cold = (chat(client, "Reset the cache."), chat(client, "Name a city in Spain.", system=system, logprobs=True))[1]
    cached = warm.usage.prompt_tokens_details.cached_tokens
    check(cached >= 40 and cold_again.usage.prompt_tokens_details.cached_tokens < 20,
          f"a second request with the same system prompt reports {cached} cached tokens of {warm.usage.prompt_tokens}")
    toks = lambda r: [t.token for t in r.choices[0].logprobs.content]  # noqa: E731
    check(toks(warm) == toks(warm_cold) and toks(cold) == toks(cold_again),
          f"cached and cold runs give the same tokens: {warm.choices[0].message.content!r}")

    # A client that disconnects frees the engine: its generation stops at the next token.
    before = health(base_a)["engine"]
    s = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Write a long story about a dragon."}],
                                       max_tokens=400, temperature=0, stream=True)
    got = 0
    for chunk in s:
        got += 1
        if got == 3:
            break
    s.close()
    after = None
    for _ in range(600):
        after = health(base_a)["engine"]
        if after["served"] > before["served"] and not after["busy"]:
            break
        time.sleep(0.1)
    check(after["cancelled"] == before["cancelled"] + 1 and after["last_finish_reason"] == "abort"
          and after["last_completion_tokens"] < 400, f"a disconnect cancels the generation: {after}")
    r = chat(client, "What is 2 + 2?")
    check(r.choices[0].message.content == alone[1], "and the next request is served normally")

    # Speculative decoding (server C, --draft lookup): the same answers as A, token for token,
    # with stop strings, logprobs and structured output; drafts counted in timings and /health;
    # a client that leaves mid-generation cancels it.
    drafting = openai.OpenAI(base_url=f"{base_c}/v1", api_key="none", max_retries=0, timeout=600)
    check(health(base_c)["engine"]["draft"] == "lookup", f"/health names the drafter: {health(base_c)['engine']}")
    quote = ("Repeat this sentence exactly: The quick brown fox jumps over the lazy dog near the "
             "old river bank while the farmer watches from the red barn.")
    for ask in (dict(content=quote, max_tokens=40), dict(content=questions[0]), dict(content=questions[1]),
                dict(content=questions[0], stop=["Paris"]),
                dict(content="Say hello.", logprobs=True, top_logprobs=2, max_tokens=8)):
        a, c = chat(client, **ask), chat(drafting, **ask)
        same = (a.choices[0].message.content == c.choices[0].message.content
                and a.choices[0].finish_reason == c.choices[0].finish_reason
                and a.usage.completion_tokens == c.usage.completion_tokens)
        if ask.get("logprobs"):
            same = same and [t.token for t in a.choices[0].logprobs.content] == [t.token for t in c.choices[0].logprobs.content]
        timings = (c.model_extra or {}).get("timings", {})
        check(same and "draft_n" in timings and "draft_n" not in (a.model_extra or {}).get("timings", {}),
              f"drafted answer equals the plain one: {c.choices[0].message.content!r} (timings {timings})")
    kw = dict(max_tokens=160, response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}})
    a = chat(client, "Describe a user of our site as JSON.", **kw).choices[0].message.content
    c = chat(drafting, "Describe a user of our site as JSON.", **kw).choices[0].message.content
    check(a == c, f"structured output under drafting equals the plain one: {c}")
    e = health(base_c)["engine"]
    check(e["drafted"] > 0 and 0 < e["accepted"] <= e["drafted"], f"/health counts drafts: {e['drafted']} drafted, {e['accepted']} accepted")
    s = drafting.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": quote}],
                                         max_tokens=400, temperature=0, stream=True)
    for i, chunk in enumerate(s):
        if i == 3:
            break
    s.close()
    for _ in range(600):
        after = health(base_c)["engine"]
        if after["served"] > e["served"] and not after["busy"]:
            break
        time.sleep(0.1)
    check(after["cancelled"] == e["cancelled"] + 1 and after["last_finish_reason"] == "abort",
          f"a disconnect cancels a drafted generation: {after}")
    check(chat(drafting, questions[1]).choices[0].message.content == alone[1], "and the next drafted request is served normally")

    # Context shift: a chat twice as long as the context keeps answering.
    shift = openai.OpenAI(base_url=f"{base_b}/v1", api_key="none", max_retries=0, timeout=600)
    messages = [{"role": "system", "content": "You are brief."}]
    total, turns = 0, 0
    while total <= 2 * 160:
        n = turns + 3
        messages.append({"role": "user", "content": f"Tell me one short fact about the number {n}, and one about the number {n * 7}, in a few words."})
        r = shift.chat.completions.create(model="smollm2", messages=messages, max_tokens=16, temperature=0)
        reply = r.choices[0].message.content
        messages.append({"role": "assistant", "content": reply})
        turns += 1
        total += sum(len(raw_post(base_b, "/tokenize", json.dumps({"content": m["content"]}).encode())[1]["tokens"]) for m in messages[-2:])
        if not reply or r.usage.prompt_tokens + 16 > 160:
            check(False, f"turn {turns}: reply {reply!r}, prompt {r.usage.prompt_tokens} tokens")
            break
    check(total > 2 * 160, f"a chat of {turns} turns ({total} tokens) through a 160-token context kept answering")
    try:
        chat(client, "x " * 1100)
    except openai.BadRequestError as e:
        check("--context-shift" in e.body["message"], "without --context-shift the error says how to get it")

    # A full queue answers 429: B queues one request behind the running one.
    running = shift.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Count to one hundred."}],
                                            max_tokens=120, temperature=0, stream=True)
    next(iter(running))
    waiting = threading.Thread(target=lambda: shift.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Hi"}], max_tokens=2, temperature=0))
    waiting.start()
    while health(base_b)["engine"]["queued"] < 1:
        time.sleep(0.05)
    try:
        shift.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
        check(False, "a request beyond the queue is refused")
    except openai.RateLimitError as e:
        check(e.status_code == 429 and e.body["code"] == "rate_limit_exceeded", f"a full queue answers 429: {e.body['message']}")
    running.close()
    waiting.join()
finally:
    for p in (server_a, server_b, server_c):
        p.terminate()
        p.wait()

print(f"{len(failures)} failures" if failures else "all wisp serve tests passed")
sys.exit(1 if failures else 0)
