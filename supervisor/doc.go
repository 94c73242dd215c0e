// Package supervisor runs a command as N worker processes and keeps them
// alive: it gives each worker its own loopback port, waits until the worker
// listens there, tells a Router which workers may take traffic, restarts
// crashed workers with backoff, gives up on a crash loop, and stops every
// worker, with every process it started, within one shutdown budget.
//
// It is not a proxy and knows nothing of HTTP: the traffic side learns about
// workers only through the Router interface declared here. It does not decide
// how many workers to run or how large their heaps are; the caller passes a
// Prepare function that builds each worker's argv and environment.
//
// # Direct mode
//
// With Config.Sockets set, a worker also inherits its slot's public
// listening socket as descriptor 3, and PORT names a port nobody may listen
// on: the runtime's preload redirects the app's listen(PORT) to the socket
// and serves the same app on the private health address, where readiness is
// checked. A worker that does not take its socket within the ready timeout
// is not ready, with the reason; one of whose processes listens on PORT
// itself is refused at once, as is one that exits with
// Config.RefusedExitCode before it is ready (the preload's refusal of an app
// that cannot run in direct mode): Run gives up unless another slot serves,
// since retrying cannot help. The socket stays
// the Sockets' own, so a crashed or replaced worker's queue is not lost;
// the Sockets learn from the Router which workers serve, and a slot scaled
// away gives its socket back only when its last worker is gone. Where the
// runtime takes them, a worker also gets, as descriptor 4, its end of a
// channel over which the Sockets pass it the connections queued for a slot
// without a serving worker (Sockets.Channel).
//
// # A worker's processes
//
// A worker runs in a process group of its own, but the processes it starts
// may leave the group: a detached child in a session of its own, a daemon
// that double-forks. None outlives the worker. The supervisor remembers the
// processes of a worker's tree as the memory sampler walks it, gives each
// worker a value of its own in EnvWorkerKey that its children inherit, and
// finds the worker's processes among percore's descendants (family.go says
// why in /proc and not in a cgroup). The worker's stop signal and its
// SIGKILL reach them with its group: in the table, "the group" means both.
// Once a worker has exited, what is left of its group is killed at once, as
// the table says; its other processes get the stop signal (unless they had
// it with the worker's), then SIGKILL after LeftoverGrace or at the stop's
// deadline, and the log says how many there were.
//
// # Slots
//
// Each of the N places a worker runs in is a slot, and one goroutine owns
// each slot. Everything that changes a slot reaches that goroutine as an
// event naming the worker it is about; an event about a worker that is no
// longer the slot's is ignored. One transition function moves the slot from
// state to state and keeps its records (last exit and reason, restarts,
// replacements, failed starts); Snapshot reads the copy the goroutine
// publishes after each event. This table is the whole machine; a test
// checks the code against it. "(new)" marks an event about the replacement
// starting beside the serving worker.
//
//	state      event                 next       what the slot does
//	starting   ready                 ready      route the worker; measure its memory
//	starting   not ready             starting   SIGKILL the group; its exit is a failed start
//	starting   shortage              starting   SIGKILL the group; its exit is not a failed start
//	starting   start failed          backoff    a failed start, or an uncounted one for lack of resources
//	starting   exit                  backoff    a failed start; stopped after MaxBootFailures, or at once when refused, if no slot serves
//	starting   kill                  starting   SIGKILL the group; its exit is a failed start
//	starting   replace               starting   held until the worker is ready
//	starting   remove                stopping   drain and stop within one shutdown timeout
//	starting   stop                  stopping   drain and stop within the stop's budget
//	ready      exit                  backoff    a crash; within MinUptime of ready a failed start, stopped as in starting
//	ready      eject                 ejecting   out of rotation, stop signal, SIGKILL after EjectGrace
//	ready      kill                  ejecting   out of rotation, SIGKILL now
//	ready      recycle               ready      queue one recycling with the replacer; a memory loop's after the backoff
//	ready      replace               replacing  start the replacement beside the worker
//	ready      replace (stop first)  recycling  drain and stop the worker before its replacement starts
//	ready      remove                stopping   drain and stop within one shutdown timeout
//	ready      stop                  stopping   drain and stop within the stop's budget
//	replacing  ready (new)           probation  route the replacement beside the worker; without a probation, as probation over
//	replacing  not ready (new)       replacing  SIGKILL the replacement; its exit fails the replacement
//	replacing  shortage (new)        replacing  SIGKILL the replacement; its exit fails the replacement
//	replacing  kill (new)            replacing  SIGKILL the replacement; its exit fails the replacement
//	replacing  exit (new)            ready      the replacement failed; the worker keeps serving
//	replacing  exit                  starting   a crash, counted as a restart; the replacement is the slot's worker
//	replacing  eject                 starting   the worker stops as in ejecting; the replacement is the slot's worker
//	replacing  kill                  starting   the worker is killed; the replacement is the slot's worker
//	replacing  replace               replacing  answered at once: the replacement runs the current code
//	replacing  replace (stop first)  starting   the worker drains and stops now, as a replaced one; the replacement is the slot's worker
//	replacing  remove                stopping   both workers stop; the replacement is answered
//	replacing  stop                  stopping   both workers stop; the replacement is answered
//	probation  probation over (new)  ready      the old worker drains, stops, then answers
//	probation  kill (new)            probation  SIGKILL the replacement; its exit fails the replacement
//	probation  exit (new)            ready      out of rotation; the replacement failed, the worker keeps serving
//	probation  exit                  ready      a crash, counted as a restart; the replacement is the slot's worker, answered
//	probation  eject                 ready      the worker stops as in ejecting; the replacement is the slot's worker, answered
//	probation  kill                  ready      the worker is killed; the replacement is the slot's worker, answered
//	probation  replace               probation  answered at once: the replacement runs the current code
//	probation  remove                stopping   both workers stop; the replacement is answered
//	probation  stop                  stopping   both workers stop; the replacement is answered
//	ejecting   exit                  backoff    recorded with the ejection's reason, max-memory, or oom kill
//	ejecting   kill                  ejecting   SIGKILL now
//	ejecting   replace               ejecting   answered at once: a worker with the current code starts next
//	ejecting   remove                stopping   drain and stop within one shutdown timeout
//	ejecting   stop                  stopping   drain and stop within the stop's budget
//	recycling  exit                  starting   a replacement, counted; stopped instead when percore stops
//	recycling  kill                  recycling  SIGKILL now
//	recycling  replace               recycling  answered at once: a worker with the current code starts next
//	recycling  remove                stopping   the slot ends once the worker is gone
//	recycling  stop                  stopping   the slot ends once the worker is gone
//	stopping   exit                  stopped    recorded as stopped
//	stopping   kill                  stopping   SIGKILL now
//	stopping   replace               stopping   answered: the slot is ending
//	backoff    backoff over          starting   a restart, counted; the next delay doubles up to BackoffMax
//	backoff    replace               backoff    answered at once: the next start runs the current code
//	backoff    remove                stopped    nothing runs
//	backoff    stop                  stopped    nothing runs
//	stopped    replace               stopped    answered: the slot has ended
//
// Any other event leaves the state as it is. In every state, the exit of a
// worker the slot no longer owns (replaced, ejected while its replacement
// started, or a replacement cut short) is recorded; sample, health and out
// of rotation record the current worker's memory, failed health checks and
// the proxy's ejection of it. Starting shows as StateStarting; ready,
// replacing and probation as StateReady; ejecting, recycling and stopping
// as StateDraining; backoff and stopped as themselves.
//
// # Probation
//
// A reload's replacement is on probation once it is ready: it takes
// requests beside the worker it replaces, which keeps serving until the
// replacement has served for Config.Probation. New code that dies soon
// after it listens (a failed connection, a timer, its first requests) then
// fails the replacement, and with it the reload, while the old worker
// still serves; the requests the dying replacement held are the proxy's to
// retry elsewhere. The replacement takes traffic during its probation, or
// the probation would prove nothing about the requests that break it.
// Memory: a slot then runs two workers, as it does while a replacement
// starts, and the replacer runs one replacement at a time, so one extra
// worker at most runs; the sampler and the Guard see the slot's own worker,
// the old one, until the probation is over.
//
// # Stopping a worker
//
// Draining and stopping a worker is one sequence within one deadline: out
// of rotation (in a stop of the supervisor, only once the Router sees it
// idle), the stop signal as soon as its work in flight is done, or, still
// busy, when only HandlerShare of the budget is left, and SIGKILL to its
// process group at the deadline. Every worker gets the stop signal before
// any SIGKILL, so the app's own handler runs. The worker's StopRecord (in
// WorkerStatus.LastStop and on its "worker stopped" log line) says how it
// ended and, when it was killed, how many requests (in direct mode,
// connections) it cut.
package supervisor
