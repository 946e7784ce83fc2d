// "Use" beside a proposed threshold copies it into the builder's field; saving stays the
// merchant's act (the button never submits). Hidden without JavaScript: the figure is shown.
document.querySelectorAll("[data-use-threshold]").forEach((button) => {
  button.hidden = false;
  button.addEventListener("click", () => {
    const field = document.getElementById("b-threshold");
    if (!field) return;
    field.value = button.dataset.useThreshold;
    field.dispatchEvent(new Event("input", { bubbles: true }));
    field.focus();
  });
});
