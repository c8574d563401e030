// The run page's live view: one websocket, full history on connect, then a tick per second.
// Rows are kept by second ("t") so re-sent seconds replace older values and reconnects catch up.
window.llmperf = window.llmperf || {};

(function () {
  const layout = (title, unit) => ({
    title: {text: title}, height: 280, margin: {l: 50, r: 20, t: 40, b: 40},
    xaxis: {title: {text: "seconds"}}, yaxis: {title: {text: unit}, rangemode: "tozero"},
    template: "plotly_white", legend: {orientation: "h"},
  });
  const config = {responsive: true, displaylogo: false};

  const state = {rows: new Map(), ticks: 0, messages: 0, socket: null, done: false};
  llmperf.live = state;

  function sortedRows() {
    return Array.from(state.rows.values()).sort((a, b) => a.t - b.t);
  }

  function line(rows, key, name) {
    return {x: rows.map((r) => r.t), y: rows.map((r) => r[key]), name: name, mode: "lines+markers", type: "scatter"};
  }

  function draw() {
    const rows = sortedRows();
    Plotly.react("chart-ttft", [line(rows, "ttft_p50", "p50"), line(rows, "ttft_p95", "p95"),
      line(rows, "ttft_p99", "p99")], layout("TTFT", "ms"), config);
    Plotly.react("chart-tokens", [line(rows, "output_tokens_per_s", "output tokens/s")],
      layout("Output tokens/s (tokens counted in the second they arrived)", "tokens/s"), config);
    Plotly.react("chart-qpm", [line(rows, "qpm", "QPM")],
      layout("Requests per minute (completions, last 10 s)", "QPM"), config);
    Plotly.react("chart-users", [line(rows, "active_users", "active users")], layout("Active users", "users"), config);
    const success = rows.map((r) => {
      const n = (r.completed || 0) + (r.failed || 0);
      return n ? (r.completed || 0) / n : null;
    });
    Plotly.react("chart-success", [{x: rows.map((r) => r.t), y: success, name: "success rate", mode: "lines+markers"}],
      Object.assign(layout("Success rate (by completion second)", "fraction"), {yaxis: {range: [0, 1.05]}}), config);
    const classes = new Set();
    rows.forEach((r) => Object.keys(r.failures || {}).forEach((c) => classes.add(c)));
    const bars = Array.from(classes).map((c) => ({x: rows.map((r) => r.t), y: rows.map((r) => (r.failures || {})[c] || 0),
      name: c, type: "bar"}));
    Plotly.react("chart-failures", bars.length ? bars : [{x: [], y: [], type: "bar", name: "none"}],
      Object.assign(layout("Failures by class (by completion second)", "requests"), {barmode: "stack"}), config);
    drawAnswers(rows);
    drawServer(rows);
  }

  // Answer quality per second (every run) and running accuracy (graded datasets only, a textual pass
  // while the run goes on; the exact, symbolic verdicts are on the finished page).
  const MONITORS = {empty_answer: "empty answer", truncated_thinking: "thinking truncated",
    cut_by_length: "cut by max_tokens", reasoning_leak: "reasoning leak"};

  function drawAnswers(rows) {
    const fraction = (title) => Object.assign(layout(title, "fraction"), {yaxis: {range: [0, 1.05], title: {text: "fraction"}}});
    if (document.getElementById("chart-quality")) {
      const traces = Object.entries(MONITORS).map(([key, name]) => line(rows, key + "_rate", name));
      Plotly.react("chart-quality", traces, fraction("Answer quality per second"), config);
    }
    const box = document.getElementById("chart-accuracy");
    if (box && rows.some((r) => r.accuracy != null)) {
      box.hidden = false;
      Plotly.react("chart-accuracy", [line(rows, "accuracy", "accuracy")], fraction("Accuracy per second (running)"), config);
    }
  }


  // The server's batch and queue (shard 0 scrapes the endpoint's metrics URLs) beside the client's TTFT.
  function drawServer(rows) {
    const div = document.getElementById("chart-server-live");
    if (!div || !rows.some((r) => r.server_running !== undefined)) return;
    div.hidden = false;
    const ttft = Object.assign(line(rows, "ttft_p99", "client TTFT p99 (ms)"), {yaxis: "y2"});
    Plotly.react(div, [line(rows, "server_running", "server running"), line(rows, "server_waiting", "server waiting"), ttft],
      Object.assign(layout("Server batch and queue beside TTFT", "requests"),
        {yaxis2: {overlaying: "y", side: "right", title: {text: "ms"}, rangemode: "tozero"}}), config);
  }

  function text(id, value) {
    const el = document.getElementById(id);
    if (el) el.textContent = value;
  }

  function drawShards(shards) {
    const body = document.querySelector("#shards tbody");
    body.innerHTML = "";
    shards.forEach((s) => {
      const tr = document.createElement("tr");
      [s.index, s.status, s.hostname, s.records_count, s.ended_by, s.error].forEach((v) => {
        const td = document.createElement("td");
        td.textContent = v == null ? "" : v;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    text("shard-count", shards.length + " shard" + (shards.length === 1 ? "" : "s"));
  }

  function apply(msg) {
    (msg.rows || []).forEach((r) => state.rows.set(r.t, r));
    const s = msg.snapshot || {};
    text("n-started", s.started || 0);
    text("n-completed", s.completed || 0);
    text("n-failed", s.failed || 0);
    text("success-rate", s.success_rate == null ? "–" : (100 * s.success_rate).toFixed(1) + "%");
    if (s.accuracy != null && document.getElementById("live-accuracy-line")) {
      document.getElementById("live-accuracy-line").hidden = false;
      text("live-accuracy", (100 * s.accuracy).toFixed(1) + "% of " + (s.graded || 0) + " graded");
    }
    if (msg.status) {
      text("run-status", msg.status);
      document.getElementById("run-status").className = "status " + msg.status;
      const place = document.getElementById("queue-place");
      if (place && msg.status !== "queued") place.hidden = true;  // it left the queue
    }
    if (msg.reason != null) text("run-reason", msg.reason);
    if (msg.progress != null) {
      document.getElementById("progress-bar").style.width = (100 * msg.progress).toFixed(1) + "%";
      text("progress-text", (100 * msg.progress).toFixed(0) + "% done");
    }
    text("eta", msg.eta_s != null && msg.status !== undefined && msg.eta_s > 0 ? "· about " + Math.ceil(msg.eta_s) + " s left" : "");
    if (msg.shards) drawShards(msg.shards);
    const warnings = document.getElementById("warnings");
    warnings.innerHTML = "";
    (msg.warnings || []).forEach((w) => {
      const li = document.createElement("li");
      li.textContent = w;
      warnings.appendChild(li);
    });
    draw();
  }

  function connect(opts) {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(scheme + "://" + window.location.host + "/ws/runs/" + opts.runId + "/");
    state.socket = socket;
    socket.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      state.messages += 1;
      if (msg.type === "tick") state.ticks += 1;
      if (msg.type === "final") {
        state.done = true;
        text("run-status", msg.status);
        setTimeout(() => window.location.reload(), 1500);  // the finished page has the summary
        return;
      }
      apply(msg);
    };
    socket.onclose = () => {
      state.socket = null;
      if (!state.done && opts.active) setTimeout(() => connect(opts), 2000);  // reconnect, history catches up
    };
  }

  llmperf.startLive = function (opts) {
    apply(JSON.parse(document.getElementById("live-initial").textContent));
    if (opts.active) connect(opts);
  };
})();
