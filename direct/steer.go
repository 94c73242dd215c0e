package direct

// steerProgram is the classic BPF program that picks the socket of each new
// connection in the SO_REUSEPORT group: one of the group's indexes in
// allowed, at random. An empty allowed returns an index past the end of
// the group, on which the kernel falls back to its own hash of the
// connection over every socket.
//
// Linux keeps a group's sockets in an array in the order they joined; a
// socket leaving it is replaced by the last one. Sockets mirrors that order
// to know each slot's index.
func steerProgram(allowed []int) []sockFilter {
	if len(allowed) == 0 {
		return []sockFilter{{code: bpfRet | bpfK, k: ^uint32(0)}}
	}
	prog := []sockFilter{
		{code: bpfLd | bpfW | bpfAbs, k: skfAdOff + skfAdRandom},
		{code: bpfAlu | bpfMod | bpfK, k: uint32(len(allowed))},
	}
	for i, index := range allowed[:len(allowed)-1] {
		prog = append(prog,
			sockFilter{code: bpfJmp | bpfJeq | bpfK, k: uint32(i), jt: 0, jf: 1},
			sockFilter{code: bpfRet | bpfK, k: uint32(index)})
	}
	return append(prog, sockFilter{code: bpfRet | bpfK, k: uint32(allowed[len(allowed)-1])})
}

// sockFilter is one instruction of a classic BPF program.
type sockFilter struct {
	code   uint16
	jt, jf uint8
	k      uint32
}

// The classic BPF opcodes and the ancillary load of a random number, as
// linux/filter.h and linux/bpf_common.h define them.
const (
	bpfLd  = 0x00
	bpfAlu = 0x04
	bpfJmp = 0x05
	bpfRet = 0x06
	bpfW   = 0x00
	bpfAbs = 0x20
	bpfMod = 0x90
	bpfJeq = 0x10
	bpfK   = 0x00

	skfAdOff    = 0xfffff000 // SKF_AD_OFF, -0x1000
	skfAdRandom = 56         // SKF_AD_RANDOM
)
