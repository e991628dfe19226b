// The ipywidgets manager (embed.js, @jupyter-widgets/html-manager 1.0.x) typesets every widget
// label, description and HTMLMath value with the MathJax 2 API whenever `window.MathJax` exists:
//     MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])
// (its views would use a rendermime `latexTypesetter`, but the HTMLManager that embed.js builds
// has none). The book serves MathJax 3, which has no `Hub`: on a page with both math and widgets
// every widget threw "Cannot read properties of undefined (reading 'Queue')".
//
// This script gives MathJax 3 that one MathJax 2 entry point, mapped onto typesetClear +
// typesetPromise. It is loaded (not deferred) after the `window.MathJax = {...}` configuration
// that Sphinx writes on pages with math and before the deferred MathJax script, and hooks
// MathJax's startup `ready`. On a page without math `window.MathJax` stays undefined and embed.js
// typesets nothing, as before. Until `ready` no widget is on the page: embed.js renders on the
// window's `load` event, after every deferred script; MathJax's first pass typesets the page.
(function () {
  "use strict";
  const config = window.MathJax;
  if (config === undefined) {
    return;
  }
  const hub = {
    Queue(...commands) {
      for (const [action, , element] of commands) {
        if (action !== "Typeset") {
          throw new Error(`MathJax.Hub.Queue: only "Typeset" is bridged to MathJax 3, not ${action}`);
        }
        const elements = element ? [element] : undefined;
        // MathJax 3 wants its typeset calls serialized on startup.promise.
        MathJax.startup.promise = MathJax.startup.promise
          .then(() => {
            MathJax.typesetClear(elements);
            return MathJax.typesetPromise(elements);
          })
          .catch((error) => console.error("MathJax typeset failed:", error));
      }
    },
  };
  const startup = (config.startup = config.startup || {});
  const ready = startup.ready;
  startup.ready = function () {
    if (ready) {
      ready();
    } else {
      MathJax.startup.defaultReady();
    }
    MathJax.Hub = hub;
  };
})();
