// Eventgate console: the only script (no inline code; the CSP forbids it).
// Buttons with data-confirm ask before their form is sent.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const question = button && button.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
// Buttons with data-copy put the text of the element they name on the clipboard.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (source && navigator.clipboard) {
    navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  }
});
// Buttons with data-back return to the previous page (a refused form keeps what was typed).
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-back]")) {
    history.back();
  }
});
