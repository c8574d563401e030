// The endpoint form: the stream-format group only for generic protocols, and a pasted sample stream
// classified line by line (posted with the format's fields to the stream check view, never saved).
(function () {
  const form = document.getElementById("object-form");
  const check = document.getElementById("stream-check");
  const protocol = document.getElementById("id_protocol");
  if (!form || !check || !protocol) return;
  const formatSet = document.getElementById("set-stream-format");
  const sample = document.getElementById("id_stream_sample");
  const status = document.getElementById("stream-check-status");
  const body = check.querySelector("tbody");
  let timer = null;
  let seq = 0;
  let leaving = false; // saving: no new check may race the page's navigation

  function showFormat() {
    const generic = protocol.value.startsWith("generic");
    const failed = formatSet && formatSet.querySelector(".has-error");
    if (formatSet) formatSet.style.display = generic || failed ? "" : "none";
    check.style.display = generic || failed ? "" : "none";
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  async function classify() {
    if (leaving) return;
    const mine = ++seq;
    if (!sample.value.trim()) {
      body.replaceChildren();
      status.textContent = "";
      return;
    }
    const response = await fetch(check.dataset.url, {method: "POST", body: new FormData(form), credentials: "same-origin"});
    if (mine !== seq) return;
    const data = await response.json();
    if (data.errors) {
      body.replaceChildren();
      status.textContent = Object.values(data.errors).flat().join(" ");
      check.dataset.state = "error";
      return;
    }
    const unknown = data.rows.filter((r) => r.packets.includes("unknown")).length;
    status.textContent = data.rows.length + " lines read" + (unknown ? ", " + unknown + " not understood by this format." : ", all understood.");
    body.replaceChildren(...data.rows.map((row) => {
      const tr = document.createElement("tr");
      if (row.packets.includes("unknown")) tr.className = "unknown";
      tr.append(cell(row.line), cell(row.packets.join(", ") || "–", "kind"), cell(row.note), cell(row.text));
      return tr;
    }));
    check.dataset.state = "ok";
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(classify, 250);
  }
  form.addEventListener("submit", () => { leaving = true; clearTimeout(timer); });
  protocol.addEventListener("change", showFormat);
  sample.addEventListener("input", later);
  if (formatSet) {
    formatSet.addEventListener("input", later);
  }
  showFormat();
})();
