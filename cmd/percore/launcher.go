package main

import (
	"fmt"
	"strconv"
	"strings"
)

// launcherPIDVar names the variable through which the npm package's
// launcher (npm/percore/bin/percore.js) gives percore its pid. It asks
// percore to stop gracefully, as on SIGTERM, when the launcher ends, however
// it ends (SIGKILL too), so that percore never outlives the launcher nor
// keeps its port after it. It is the launcher's alone: percore takes it out
// of the workers' environment.
const launcherPIDVar = "PERCORE_LAUNCHER_PID"

// takeLauncher returns environ without launcherPIDVar, and the launcher's
// pid it held (0 when unset).
func takeLauncher(environ []string) ([]string, int, error) {
	rest := make([]string, 0, len(environ))
	pid := 0
	for _, kv := range environ {
		v, ok := strings.CutPrefix(kv, launcherPIDVar+"=")
		if !ok {
			rest = append(rest, kv)
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, 0, fmt.Errorf("%s=%q: want the pid of percore's launcher", launcherPIDVar, v)
		}
		pid = n
	}
	return rest, pid, nil
}
