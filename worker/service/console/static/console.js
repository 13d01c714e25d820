// The sync run page's live log: each Server-Sent Event adds a line; "end" shows the summary
// and reloads once for the final table. Text only (textContent): nothing is parsed as HTML.
(function () {
  "use strict";
  var log = document.getElementById("log");
  var summary = document.getElementById("summary");
  if (!log || !summary || !window.EventSource || summary.getAttribute("data-done")) { return; }
  var shown = log.children.length;
  var source = new EventSource(log.getAttribute("data-events"));
  source.onmessage = function (event) {
    var index = parseInt(event.lastEventId, 10);
    if (index < shown) { return; }  // already on the page as it was rendered
    var item = document.createElement("li");
    item.textContent = event.data;
    log.appendChild(item);
    shown = index + 1;
  };
  source.addEventListener("end", function (event) {
    source.close();
    summary.textContent = event.data;
    summary.setAttribute("data-done", "true");
    window.location.reload();
  });
}());
