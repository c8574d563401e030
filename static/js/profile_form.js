// The profile form shows only the fields (and groups) that matter for the chosen kind.
(function () {
  const byKind = {
    users: ["users", "spawn_rate", "hold_s", "ramp_down_s", "turns", "think_s"],
    stages: ["stages", "stage_mode"],
    rate: ["rate", "rate_unit", "arrival", "max_concurrency"],
    sweep: ["sweep_levels", "sweep_mode", "level_duration_s", "arrival", "max_concurrency", "users", "budget_param", "budget_levels"],
    replay: ["replay", "speed", "max_concurrency"],
    kv_reuse: ["users", "spawn_rate"],
    capacity: ["mode", "load_min", "load_max", "attainment", "level_min_requests", "min_level_s", "warmup_s",
               "tolerance", "per_bucket", "arrival", "max_concurrency"],
  };
  const all = new Set(Object.values(byKind).flat());
  const kind = document.getElementById("id_kind");
  if (!kind) return;
  function update() {
    const show = new Set(byKind[kind.value] || []);
    all.forEach((name) => {
      const el = document.getElementById("field-" + name);
      if (el) el.style.display = show.has(name) || el.classList.contains("has-error") ? "" : "none";
    });
    document.querySelectorAll("#object-form fieldset").forEach((set) => {
      const fields = Array.from(set.querySelectorAll(".field"));
      set.style.display = fields.some((f) => f.style.display !== "none") ? "" : "none";
    });
  }
  kind.addEventListener("change", update);
  update();
})();
