// Starts Swagger UI on the API docs page, in a file of its own so the Content-Security-Policy
// needs no inline script. validatorUrl null: the page fetches nothing from another site.
"use strict";
window.ui = SwaggerUIBundle({
  url: document.body.getAttribute("data-openapi-url"),
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
