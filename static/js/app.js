// Behaviour every page shares. The CSP allows no inline event handlers, so they are bound here.
document.addEventListener("DOMContentLoaded", () => {
  // A select marked data-autosubmit (the team switcher) submits its form when changed.
  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });
});
