// work: about 1 ms of CPU per request, like an app that renders a template
// or serialises a large object.
"use strict";
const { burn, serve } = require("./common");
serve(() => {
  burn(1);
  return "done\n";
});
