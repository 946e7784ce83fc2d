// The rule builder, enhanced: the trigger's and each step's own controls show as their
// kind is chosen, and a condition's operators and value input follow its field. Without
// this script the page still works: "Update the form" re-renders it on the server.
(function () {
  "use strict";
  var form = document.getElementById("builder");
  var data = document.getElementById("rule-vocabulary");
  if (!form || !data) return;
  var vocab = JSON.parse(data.textContent);

  function showMatching(select, attribute, scope) {
    scope.querySelectorAll("[" + attribute + "]").forEach(function (part) {
      var kinds = part.getAttribute(attribute).split(" ");
      part.hidden = kinds.indexOf(select.value) < 0;
    });
  }

  function operatorsFor(field) {
    var kind = vocab.fields[field];
    return kind ? vocab.operators[kind] : Object.keys(vocab.labels);
  }

  function valueKind(field, operator) {
    if (operator === "in" || operator === "not_in") return "list";
    return vocab.fields[field] || "text";
  }

  function option(value, label, selected) {
    var o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    o.selected = selected;
    return o;
  }

  function valueControl(kind, old) {
    var control;
    var current = old.value;
    if (kind === "bool" || kind === "action_type") {
      control = document.createElement("select");
      var choices = kind === "bool" ? [["true", "yes"], ["false", "no"]]
        : vocab.action_types.map(function (t) { return [t, t]; });
      choices.forEach(function (c) { control.appendChild(option(c[0], c[1], c[0] === current)); });
    } else {
      control = document.createElement("input");
      control.type = kind === "number" ? "number" : "text";
      if (kind === "number") { control.step = "any"; control.inputMode = "decimal"; }
      if (kind === "list") control.placeholder = "one, another";
      // A number input refuses words: keep what was typed only where it still fits.
      control.value = kind === "number" && isNaN(Number(current)) ? "" : current;
    }
    control.id = old.id;
    control.name = old.name;
    control.className = old.className;
    control.dataset.kind = kind;
    return control;
  }

  function followField(row) {
    var field = row.querySelector(".cond-field");
    var operator = row.querySelector(".cond-operator");
    var value = row.querySelector(".cond-value");
    if (!field || !operator || !value) return;
    var allowed = operatorsFor(field.value);
    var chosen = allowed.indexOf(operator.value) >= 0 ? operator.value : allowed[0];
    operator.replaceChildren.apply(operator, allowed.map(function (op) {
      return option(op, vocab.labels[op], op === chosen);
    }));
    var kind = valueKind(field.value, operator.value);
    if (value.dataset.kind !== kind) value.replaceWith(valueControl(kind, value));
  }

  form.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[data-switch=when]")) showMatching(target, "data-when", form);
    if (target.matches("[data-switch=action]")) {
      showMatching(target, "data-action", target.closest(".action"));
    }
    if (target.matches(".cond-field, .cond-operator")) followField(target.closest(".row"));
  });
})();

// "Advanced (JSON)" in the page's contents opens the folded JSON view it points at.
(function () {
  "use strict";
  function openAdvanced() {
    var details = document.getElementById("advanced-json");
    if (details && location.hash === "#advanced") details.open = true;
  }
  window.addEventListener("hashchange", openAdvanced);
  openAdvanced();
})();
