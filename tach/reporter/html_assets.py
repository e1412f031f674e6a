"""The inline CSS and script of the HTML report (:mod:`tach.reporter.html`).

Both are written into the page as they are here, and its Content-Security-Policy allows
exactly these two texts (by their SHA-256): any other script or style in the page, or any
fetch, is refused by the browser. So they must not refer to anything outside the page.
"""

from __future__ import annotations

STYLE = """
:root { --pass: #2e9d4f; --fail: #d13b2e; --error: #9c1c6e; --skip: #d6a317;
  --xfail: #8d8d8d; --xpass: #e07b12; --startup: #5b6ee1; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1400px;
  padding: 0 1.5em 2em; color: #1d2430; }
h1 { font-size: 1.5em; margin: 0.8em 0 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #d8dde5; padding-bottom: 0.2em; margin-top: 1.6em; }
h3 { font-size: 0.95em; margin: 0.8em 0 0.3em; }
.summary { font-size: 1.2em; font-weight: 600; margin: 0.2em 0 0.6em; }
.summary.good { color: var(--pass); }
.summary.bad { color: var(--fail); }
table.facts th { text-align: left; padding-right: 1.2em; font-weight: 500; color: #5a6472; }
table.facts td, table.facts th { padding: 0.05em 0.4em 0.05em 0; vertical-align: top; }
nav { margin: 1em 0; }
a { color: #2a5bd7; }
code { font: 13px/1.4 ui-monospace, monospace; }
pre { font: 12.5px/1.4 ui-monospace, monospace; background: #f5f7fa; border: 1px solid #e1e5eb;
  padding: 0.6em 0.8em; overflow: auto; max-height: 40em; white-space: pre-wrap;
  word-break: break-word; }
details.failure { border: 1px solid #e1e5eb; border-left: 4px solid var(--fail);
  margin: 0.4em 0; padding: 0.3em 0.7em; background: #fff; }
details.failure[open] { background: #fffdfd; }
details.failure summary { cursor: pointer; }
.where { color: #5a6472; }
.message { color: #7d2a22; }
.badge { display: inline-block; font-size: 0.8em; font-weight: 700; color: #fff;
  border-radius: 3px; padding: 0 0.4em; }
.badge.s-pass { background: var(--pass); } .badge.s-fail { background: var(--fail); }
.badge.s-error { background: var(--error); } .badge.s-skip { background: var(--skip); }
.badge.s-xfail { background: var(--xfail); } .badge.s-xpass { background: var(--xpass); }
table.slowest { border-collapse: collapse; }
table.slowest th, table.slowest td { padding: 0.15em 0.7em; border-bottom: 1px solid #eef0f3;
  text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.none, .note { color: #5a6472; }
.chart { overflow-x: auto; border: 1px solid #e1e5eb; }
svg.timeline { display: block; width: 100%; min-width: 900px; height: auto; }
svg .stripe { fill: #f6f8fa; }
svg text { font: 11px system-ui, sans-serif; fill: #3b4452; }
svg text.lane { text-anchor: end; }
svg text.axis { text-anchor: middle; fill: #6b7480; }
svg .tick { stroke: #e3e7ec; stroke-width: 1; }
svg rect.startup, svg rect.winddown { fill: var(--startup); opacity: 0.55; }
svg rect.unit { fill: #b9c2cf; stroke: #fff; stroke-width: 0.5; }
svg rect.unit.s-pass { fill: var(--pass); } svg rect.unit.s-fail { fill: var(--fail); }
svg rect.unit.s-error { fill: var(--error); } svg rect.unit.s-skip { fill: var(--skip); }
svg rect.unit.s-xfail { fill: var(--xfail); } svg rect.unit.s-xpass { fill: var(--xpass); }
svg rect.unit.pale { opacity: 0.28; }
svg rect.test { stroke: #fff; stroke-width: 0.3; }
svg rect.test.s-pass { fill: var(--pass); } svg rect.test.s-fail { fill: var(--fail); }
svg rect.test.s-error { fill: var(--error); } svg rect.test.s-skip { fill: var(--skip); }
svg rect.test.s-xfail { fill: var(--xfail); } svg rect.test.s-xpass { fill: var(--xpass); }
svg rect:hover { opacity: 1; stroke: #1d2430; stroke-width: 1; }
.legend .key { display: inline-block; width: 0.9em; height: 0.9em; margin: 0 0.3em 0 0.8em;
  vertical-align: -0.1em; }
.key.s-pass { background: var(--pass); } .key.s-fail { background: var(--fail); }
.key.s-error { background: var(--error); } .key.s-skip { background: var(--skip); }
.key.s-xfail { background: var(--xfail); } .key.s-xpass { background: var(--xpass); }
.key.startup { background: var(--startup); opacity: 0.55; }
footer { margin-top: 2em; color: #8a929d; font-size: 0.85em; }
"""

#: Opens the failure a link or the address names (``report.html#f-3``), and expands or
#: collapses every failure.
SCRIPT = """
(function () {
  "use strict";
  function openNamed() {
    var name = decodeURIComponent(window.location.hash.slice(1));
    var target = name ? document.getElementById(name) : null;
    if (target && target.tagName === "DETAILS") {
      target.open = true;
      target.scrollIntoView();
    }
  }
  window.addEventListener("hashchange", openNamed);
  openNamed();
  var buttons = document.querySelectorAll("button[data-toggle]");
  Array.prototype.forEach.call(buttons, function (button) {
    button.addEventListener("click", function () {
      var open = button.getAttribute("data-toggle") === "open";
      var all = document.querySelectorAll("details.failure");
      Array.prototype.forEach.call(all, function (details) { details.open = open; });
    });
  });
})();
"""
