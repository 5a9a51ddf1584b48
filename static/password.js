// Live check of the password rules shown on the page, as the student types.
// The server checks every rule again; this only helps. Rules that need the
// account's data (names, guessability) are left to the server.
(function () {
  "use strict";
  var list = document.getElementById("rules");
  var password = document.getElementById("password");
  var confirmation = document.getElementById("confirmation");
  if (!list || !password) { return; }
  var okText = list.getAttribute("data-ok");
  var koText = list.getAttribute("data-ko");

  function count(value, re) { return (value.match(re) || []).length; }

  function met(rule, n, specials, value) {
    var upper = count(value, /\p{Lu}/gu), lower = count(value, /\p{Ll}/gu);
    var digits = count(value, /[0-9]/g), letters = count(value, /\p{L}/gu);
    var special = count(value, /[^\p{L}\p{N}]/gu);
    var length = Array.from(value).length;
    switch (rule) {
      case "min_length": return length >= n;
      case "max_length": return length <= n;
      case "min_letters": return letters >= n;
      case "min_digits": return digits >= n;
      case "upper": return upper > 0;
      case "lower": return lower > 0;
      case "digit": return digits > 0;
      case "special": return special > 0;
      case "min_classes": return [upper, lower, digits, special].filter(function (c) { return c > 0; }).length >= n;
      case "allowed_specials":
        return Array.from(value).every(function (c) { return /[A-Za-z0-9]/.test(c) || specials.indexOf(c) >= 0; });
      default: return null;
    }
  }

  function update() {
    var value = password.value;
    list.querySelectorAll("li[data-rule]").forEach(function (item) {
      var state = met(item.getAttribute("data-rule"), Number(item.getAttribute("data-n") || 0),
        list.getAttribute("data-specials") || "", value);
      if (state === null || value === "") {
        item.removeAttribute("data-met");
        item.querySelector(".rule-state").textContent = "";
        return;
      }
      item.setAttribute("data-met", state ? "yes" : "no");
      item.querySelector(".rule-state").textContent = state ? okText : koText;
    });
    if (confirmation) {
      confirmation.setCustomValidity(confirmation.value && confirmation.value !== value ? list.getAttribute("data-mismatch") : "");
    }
  }

  password.addEventListener("input", update);
  if (confirmation) { confirmation.addEventListener("input", update); }
})();
