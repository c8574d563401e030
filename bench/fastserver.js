// A deliberately cheap OpenAI-style streaming server for benchmarking llmperf's engine: the load
// generator must be measured against something much cheaper than itself. Plain Node.js, no deps.
//   node bench/fastserver.js PORT TTFT_MS ITL_MS TOKENS
// It records, per x-request-id, when the request arrived and when it wrote the first content chunk
// (process.hrtime = CLOCK_MONOTONIC, the same clock as Python's perf_counter_ns on Linux), served as
// [[id, arrival_ns, first_write_ns], ...] at GET /sim/log (and cleared). Server TTFT = write - arrival.
"use strict";
const http = require("http");
const [port, ttftMs, itlMs, tokens] = process.argv.slice(2).map(Number);
const log = [];
const ROLE = 'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n';
const TOK = 'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" tok"},"finish_reason":null}]}\n\n';
const FIN = 'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n';
const tail = (n) => `data: {"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":${n},"total_tokens":${n + 8}}}\n\ndata: [DONE]\n\n`;

const server = http.createServer((req, res) => {
  if (req.method === "GET") {
    if (req.url.startsWith("/sim/log")) {
      const body = JSON.stringify(log.splice(0));
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(body);
    }
    res.writeHead(200, { "content-type": "application/json" });
    return res.end('{"data":[]}');
  }
  const arrival = process.hrtime.bigint();
  req.resume();
  req.on("end", () => {
    const id = req.headers["x-request-id"] || "";
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.write(ROLE);
    let sent = 0;
    const step = () => {
      if (sent === 0) log.push([id, arrival.toString(), process.hrtime.bigint().toString()]);
      res.write(TOK);
      sent += 1;
      if (sent < tokens) {
        if (itlMs > 0) setTimeout(step, itlMs); else setImmediate(step);
      } else {
        res.end(FIN + tail(tokens));
      }
    };
    setTimeout(step, ttftMs);
  });
});
server.keepAliveTimeout = 120000;
server.listen(port, "127.0.0.1", () => console.log(`fastserver listening on http://127.0.0.1:${port}`));
