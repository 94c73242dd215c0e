// hello: a tiny response, so the figures show the cost of whatever sits in
// front of the app rather than the app itself.
"use strict";
require("./common").serve(() => "hello world\n");
