package supervisor

import (
	"fmt"
	"os"
)

// channelFD is the descriptor of the second of exec.Cmd's ExtraFiles: a
// worker's end of the channel over which the Sockets pass it connections
// (node's NODE_CHANNEL_FD).
const channelFD = directFD + 1

// directChannel opens w's channel: the file to pass as descriptor
// channelFD and the variables that tell the runtime about it; no file when
// the runtime takes no passed connection.
func (s *Supervisor) directChannel(w *worker) (*os.File, []string, error) {
	f, env, err := s.cfg.Sockets.Channel(w.key, channelFD)
	if err != nil {
		return nil, nil, fmt.Errorf("channel of worker %d: %w", w.slot, err)
	}
	return f, env, nil
}
