package jsruntime

// Script returns the script file that argv runs, as argv writes it
// (relative paths are relative to the command's working directory): the
// script after node's options, deno run's or deno serve's, the file bun
// runs. It returns "" when the command runs none that can be seen, such as
// npm start, node -e or a command of no runtime that r knows.
func (r Registry) Script(argv []string) string {
	l := r.locate(argv)
	if !l.found || !l.Binary() || l.rt.Script == nil {
		return ""
	}
	return l.rt.Script(l.Words[l.At+1:])
}
