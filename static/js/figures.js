// Draws each Vega-Lite figure of the page from the spec in its data-vega-spec attribute, with the vendored
// vega-embed (static/js/vega/); the same spec renders the SVG and PNG downloads on the server.
document.querySelectorAll("[data-vega-spec]").forEach((el) => {
  const spec = JSON.parse(el.dataset.vegaSpec);
  vegaEmbed(el, spec, { actions: false, renderer: "svg" }).catch((err) => {
    el.textContent = "This figure could not be drawn: " + err.message;
  });
});
