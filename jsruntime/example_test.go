package jsruntime_test

import (
	"fmt"

	"github.com/percore/percore/jsruntime"
)

func ExamplePrepare() {
	argv := []string{"node", "server.js", "--verbose"}
	w := jsruntime.Worker{Argv: argv, Env: []string{"PORT=41234"}}
	o := jsruntime.Options{Runtime: jsruntime.Detect(argv), HeapMB: 384, Port: 41234}

	prepared, applied, err := jsruntime.Prepare(w, o)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(prepared.Argv)
	fmt.Println(applied.HeapFlag)

	// Behind npm the limit goes to NODE_OPTIONS, which node reads.
	w.Argv = []string{"npm", "start"}
	prepared, applied, _ = jsruntime.Prepare(w, o)
	fmt.Println(prepared.Argv, prepared.Env)
	fmt.Println(applied.HeapFlag)

	// deno serve also gets its port and host.
	w.Argv = []string{"deno", "serve", "main.ts"}
	o.Runtime = jsruntime.Detect(w.Argv)
	prepared, applied, _ = jsruntime.Prepare(w, o)
	fmt.Println(prepared.Argv)
	fmt.Println(applied.PortFlag, applied.HostFlag)
	// Output:
	// [node --max-old-space-size=384 server.js --verbose]
	// --max-old-space-size=384 (argv)
	// [npm start] [PORT=41234 NODE_OPTIONS=--max-old-space-size=384]
	// --max-old-space-size=384 (NODE_OPTIONS)
	// [deno serve --v8-flags=--max-old-space-size=384 --port=41234 --host=127.0.0.1 main.ts]
	// --port=41234 --host=127.0.0.1
}

func ExampleDetect() {
	fmt.Println(jsruntime.Detect([]string{"/usr/local/bin/node20", "dist/main.js"}))
	fmt.Println(jsruntime.Detect([]string{"sh", "-c", "cd /app && exec bun server.ts"}))
	fmt.Println(jsruntime.Detect([]string{"deno", "task", "start"}))
	fmt.Println(jsruntime.Detect([]string{"python3", "app.py"}))
	// Output:
	// node
	// bun
	// deno
	// other
}
