// For `deno serve`, which takes its port from percore as --port.
import v8 from "node:v8";
export default {
  fetch() {
    return Response.json({ heap_size_limit: v8.getHeapStatistics().heap_size_limit, runtime: "deno serve" });
  },
};
