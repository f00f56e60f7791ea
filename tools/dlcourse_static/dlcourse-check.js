// Check questions (tools/dlcourse_book.py): choosing an option closes the others of its question,
// so the page shows one answer and its feedback at a time. Without this script every option
// still opens and shows its feedback (they are <details> elements).
document.addEventListener("toggle", function (event) {
  var option = event.target;
  if (!option.classList || !option.classList.contains("dl-check-option") || !option.open) return;
  var question = option.closest(".dl-check");
  question.querySelectorAll(".dl-check-option[open]").forEach(function (other) {
    if (other !== option) other.open = false;
  });
  question.setAttribute("data-answered", option.classList.contains("dl-check-right") ? "right" : "wrong");
}, true);
