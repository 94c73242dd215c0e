package control

// abstractOK says the system has abstract Unix sockets: names that live in
// the kernel (per network namespace), not in a directory.
const abstractOK = true
