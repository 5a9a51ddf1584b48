// Posts the CAS ticket form at once (CAS `method=POST`); without JavaScript
// the student presses its button.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("autopost");
  if (form) {
    form.submit();
  }
});
