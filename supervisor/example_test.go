package supervisor

import (
	"context"
	"fmt"
	"io"
	"time"
)

// ExampleSupervisor runs two workers under a Supervisor used as a library:
// a Router of its own learns of each worker once it listens on its PORT,
// and Stop drains and ends them. The workers here are this test binary
// serving as a fake app.
func ExampleSupervisor() {
	argv, env := fakeCommand("serve")
	launcher := NewWaiter()
	defer launcher.Close()
	router := newRecordingRouter()
	sup, err := New(Config{
		Command:  argv,
		Env:      env,
		Workers:  2,
		Launcher: launcher,
		Router:   router,
		Output:   NewOutput(OutputConfig{Stdout: io.Discard, Stderr: io.Discard}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	errc := make(chan error, 1)
	go func() { errc <- sup.Run() }()
	for range 2 {
		<-router.added
	}
	fmt.Println("routed:", router.count())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sup.Stop(ctx)
	fmt.Println("run:", <-errc)
	for _, ws := range sup.Snapshot() {
		fmt.Println("worker", ws.ID, ws.State, ws.LastReason, ws.LastExit)
	}
	ends, _ := sup.Counts()
	fmt.Println("routed:", router.count(), "ends counted:", len(ends))
	// Output:
	// routed: 2
	// run: <nil>
	// worker 0 stopped stopped exit code 0
	// worker 1 stopped stopped exit code 0
	// routed: 0 ends counted: 0
}

// ExampleEndReasons lists the reasons a worker ends for that percore
// counts, as the restarts metric labels them.
func ExampleEndReasons() {
	for _, r := range EndReasons() {
		if r.Counted() {
			fmt.Printf("%s planned=%t\n", r, r.Planned())
		}
	}
	// Output:
	// crash planned=false
	// boot failure planned=false
	// not ready in time planned=false
	// start failed planned=false
	// out of resources planned=false
	// health check planned=false
	// oom kill planned=false
	// memory loop planned=false
	// reload planned=true
	// max-memory planned=true
	// max-requests planned=true
}
