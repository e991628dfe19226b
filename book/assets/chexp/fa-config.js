// Loaded (not deferred) before the theme's deferred Font Awesome script.
// Font Awesome must not *replace* <i class="fa ..."> elements with <svg>: the ipywidgets
// Play button keeps references to its icon element, and once that element is swapped
// out the widget's jslinks stop updating the page (the slider moves, the image stays).
// "nest" puts the svg inside the <i> instead (widgets.css sizes it).
window.FontAwesomeConfig = Object.assign({}, window.FontAwesomeConfig || {}, {
  autoReplaceSvg: "nest",
});
