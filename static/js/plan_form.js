// The plan form's "before it runs" panel: the form is posted (not saved) to the preview view on every
// change, which answers with the expected requests, tokens, cost, duration and the profile's shape.
(function () {
  const panel = document.getElementById("plan-preview");
  const form = document.getElementById("object-form");
  if (!panel || !form) return;
  const set = (id, text) => { document.getElementById(id).textContent = text; };
  const num = (v, digits) => (v === null || v === undefined ? "–" : Number(v).toLocaleString(undefined, {maximumFractionDigits: digits}));
  let timer = null;
  let seq = 0;
  let leaving = false; // saving: no new preview may race the page's navigation

  async function refresh() {
    if (leaving) return;
    const mine = ++seq;
    const response = await fetch(panel.dataset.url, {method: "POST", body: new FormData(form), credentials: "same-origin"});
    if (mine !== seq) return; // a later change already asked again
    const data = await response.json();
    window.llmperf = window.llmperf || {};
    llmperf.planPreview = data;
    if (data.error) {
      set("preview-status", data.error);
      return;
    }
    set("preview-status", "Computed from the profile, the dataset's token counts and the endpoint's prices.");
    set("preview-requests", data.requests === null ? "unknown until measured" : "≈ " + num(data.requests, 0));
    set("preview-duration", data.duration_s === null ? "until the request limit" : num(data.duration_s, 1) + " s + up to " + num(data.drain_s, 0) + " s drain");
    set("preview-input", data.input_tokens === undefined ? "–" : num(data.input_tokens, 0) + " (" + num(data.mean_input_tokens, 0) + " per request)");
    set("preview-output", data.output_tokens_max === undefined ? "–" : num(data.output_tokens_max, 0) + " (" + num(data.mean_output_tokens_max, 0) + " per request)");
    set("preview-cost", data.cost_max === undefined ? "–" : num(data.cost_max, 4) + " " + data.currency);
    const notes = document.getElementById("preview-notes");
    notes.replaceChildren(...data.notes.map((text) => { const li = document.createElement("li"); li.textContent = text; return li; }));
    if (data.figure && window.Plotly) {
      Plotly.react("chart-plan-preview", data.figure.data, data.figure.layout, {responsive: true, displaylogo: false});
    }
    panel.dataset.ready = String(mine);
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }
  form.addEventListener("submit", () => { leaving = true; clearTimeout(timer); });
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  refresh();
})();
