// The mirror bench's paired client and upstream in ONE Node.js process (one core, one event loop), so
// the two sides of a pair never wait on a CPU scheduler between two processes sharing that core.
//   node bench/fastpair.js PORT TTFT_MS ITL_MS TOKENS
// It serves OpenAI-style streams like bench/fastserver.js, and GET /pair?via=URL&users=N&seconds=S
// runs N closed-loop users, each sending one prompt at the same instant straight to itself and to
// VIA (the mirror, a bare relay, or itself again for the control), waiting for both, and again; it
// answers [[direct_ttft_ns, via_ttft_ns], ...]: each side's time from the send to its first content
// chunk (process.hrtime = CLOCK_MONOTONIC), or -1 for a side that failed.
"use strict";
const http = require("http");
const [port, ttftMs, itlMs, tokens] = process.argv.slice(2).map(Number);
const ROLE = 'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n';
const TOK = 'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" tok"},"finish_reason":null}]}\n\n';
const FIN = 'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n';
const tail = (n) => `data: {"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":${n},"total_tokens":${n + 8}}}\n\ndata: [DONE]\n\n`;
const BODY = JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], stream: true, max_tokens: tokens });
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

function stream(req, res) {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.write(ROLE);
    let sent = 0;
    const step = () => {
      res.write(TOK);
      sent += 1;
      if (sent < tokens) setTimeout(step, itlMs);
      else res.end(FIN + tail(tokens));
    };
    setTimeout(step, ttftMs);
  });
}

// one request; resolves with ns from the send to the first chunk holding content (-1: failed)
function ask(url) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    let first = -1n;
    const req = http.request(url + "/v1/chat/completions", {
      method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(BODY) },
    }, (res) => {
      res.on("data", (chunk) => {
        if (first < 0n && chunk.includes('" tok"')) first = process.hrtime.bigint() - t0;
      });
      res.on("end", () => resolve(res.statusCode === 200 ? Number(first) : -1));
      res.on("error", () => resolve(-1));
    });
    req.on("error", () => resolve(-1));
    req.end(BODY);
  });
}

async function pair(via, users, seconds) {
  const self = `http://127.0.0.1:${port}`;
  const out = [];
  const end = Date.now() + seconds * 1000;
  const user = async () => {
    while (Date.now() < end) out.push(await Promise.all([ask(self), ask(via)]));
  };
  await Promise.all(Array.from({ length: users }, user));
  return out;
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url.startsWith("/pair")) {
    const q = new URL(req.url, "http://x").searchParams;
    pair(q.get("via"), Number(q.get("users")), Number(q.get("seconds"))).then((rows) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(rows));
    });
    return;
  }
  if (req.method === "GET") {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end('{"data":[]}');
  }
  stream(req, res);
});
server.keepAliveTimeout = 120000;
server.listen(port, "127.0.0.1", () => console.log(`fastpair listening on http://127.0.0.1:${port}`));
