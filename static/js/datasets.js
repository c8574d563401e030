// Dataset page: poll the progress endpoint while tokens are counted (or prompts generated),
// move the bars, and reload once everything is done so the histogram and tables appear.
window.llmperf = window.llmperf || {};

llmperf.watchDatasetProgress = function (section, everyMs) {
  if (!section || section.dataset.active !== "true") return;
  const url = section.dataset.url;
  const tick = async () => {
    let body;
    try {
      body = await (await fetch(url, {headers: {Accept: "application/json"}})).json();
    } catch (err) {
      return setTimeout(tick, (everyMs || 1000) * 3);  // a blip: try again, slower
    }
    body.counts.forEach((c) => {
      const row = section.querySelector(`.count-progress[data-tokenizer="${CSS.escape(c.tokenizer)}"]`);
      if (!row) return;
      row.querySelector(".pct").textContent = c.percent;
      row.querySelector(".done").textContent = c.done;
      row.querySelector(".bar").style.width = c.percent + "%";
    });
    if (body.active) setTimeout(tick, everyMs || 1000);
    else window.location.reload();
  };
  setTimeout(tick, everyMs || 1000);
};
