package jsruntime

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Registry is the list of runtimes percore knows, in the order in which a
// command's binary is matched against them. A Registry is not changed after
// it is made and is safe for concurrent use. The zero Registry knows no
// runtime: every command runs Other.
type Registry struct {
	runtimes []Runtime
}

// Default returns the runtimes percore knows: Node, Deno and Bun. Adding a
// runtime is one row here and the file of its constructor.
func Default() Registry {
	return Registry{runtimes: []Runtime{
		Node(),
		Deno(),
		Bun(),
	}}
}

// NewRegistry returns a registry of runtimes, in the order given. It
// rejects a runtime without a name or named "other", two runtimes of one
// name, a binary or wrapper name claimed twice, more than one runtime that
// RunsPackages, a HeapCap runtime without Prepare, and an InProcess name
// that is not one of the runtime's Wrappers.
func NewRegistry(runtimes ...Runtime) (Registry, error) {
	names := map[string]string{} // binary or wrapper name -> runtime
	seen := map[string]bool{}
	packages := ""
	for _, rt := range runtimes {
		switch {
		case rt.Name == "" || rt.Name != strings.ToLower(rt.Name) || strings.ContainsAny(rt.Name, " |,"):
			return Registry{}, fmt.Errorf("new runtime registry: runtime name %q is not a lower-case word", rt.Name)
		case rt.Name == otherName:
			return Registry{}, fmt.Errorf("new runtime registry: %q names commands of no known runtime", otherName)
		case seen[rt.Name]:
			return Registry{}, fmt.Errorf("new runtime registry: two runtimes named %q", rt.Name)
		case rt.Memory == HeapCap && rt.Prepare == nil:
			return Registry{}, fmt.Errorf("new runtime registry: runtime %q caps its heap but has no Prepare to pass the cap", rt.Name)
		case rt.RunsPackages && packages != "":
			return Registry{}, fmt.Errorf("new runtime registry: both %q and %q run npm packages", packages, rt.Name)
		}
		for _, name := range rt.InProcess {
			if !slices.Contains(rt.Wrappers, name) {
				return Registry{}, fmt.Errorf("new runtime registry: runtime %q: %q runs in process but is not one of its wrappers", rt.Name, name)
			}
		}
		seen[rt.Name] = true
		if rt.RunsPackages {
			packages = rt.Name
		}
		for _, name := range slices.Concat(rt.Binaries, rt.Wrappers) {
			if name == "" {
				return Registry{}, fmt.Errorf("new runtime registry: runtime %q has an empty command name", rt.Name)
			}
			if other, ok := names[name]; ok {
				return Registry{}, fmt.Errorf("new runtime registry: command %q is claimed by %q and %q", name, other, rt.Name)
			}
			names[name] = rt.Name
		}
	}
	return Registry{runtimes: slices.Clone(runtimes)}, nil
}

// Runtimes returns the registry's runtimes, in order.
func (r Registry) Runtimes() []Runtime {
	return slices.Clone(r.runtimes)
}

// Names returns the names of the registry's runtimes, in order, followed
// by "other".
func (r Registry) Names() []string {
	names := make([]string, 0, len(r.runtimes)+1)
	for _, rt := range r.runtimes {
		names = append(names, rt.Name)
	}
	return append(names, otherName)
}

// ErrUnknownRuntime is returned by Lookup for a name no runtime has.
var ErrUnknownRuntime = errors.New("unknown runtime")

// Lookup returns the runtime named name, in any letter case; "other" gives
// Other.
func (r Registry) Lookup(name string) (Runtime, error) {
	if strings.EqualFold(name, otherName) {
		return Other(), nil
	}
	for _, rt := range r.runtimes {
		if strings.EqualFold(name, rt.Name) {
			return rt, nil
		}
	}
	names := r.Names()
	want := strings.Join(names[:len(names)-1], ", ") + " or " + otherName
	return Other(), fmt.Errorf("%w %q (want %s)", ErrUnknownRuntime, name, want)
}

// binary returns the runtime that a binary of this name is, also with a
// path or a version after the name.
func (r Registry) binary(word string) (Runtime, bool) {
	name := commandName(word)
	for _, rt := range r.runtimes {
		for _, prefix := range rt.Binaries {
			if rest, ok := strings.CutPrefix(name, prefix); ok && isVersionSuffix(rest) {
				return rt, true
			}
		}
	}
	return Runtime{}, false
}

// wrapper returns the runtime that a wrapper command of this name starts.
func (r Registry) wrapper(name string) (Runtime, bool) {
	for _, rt := range r.runtimes {
		if slices.Contains(rt.Wrappers, name) {
			return rt, true
		}
	}
	return Runtime{}, false
}

// packages returns the runtime that npm packages run.
func (r Registry) packages() (Runtime, bool) {
	for _, rt := range r.runtimes {
		if rt.RunsPackages {
			return rt, true
		}
	}
	return Runtime{}, false
}

// Primary returns the registry's first runtime, which percore assumes when
// there is no command to detect one from (percore plan without COMMAND);
// Other for an empty registry.
func (r Registry) Primary() Runtime {
	if len(r.runtimes) == 0 {
		return Other()
	}
	return r.runtimes[0]
}
