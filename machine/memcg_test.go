package machine

import (
	"path/filepath"
	"testing"
)

func TestMemoryCgroup(t *testing.T) {
	cases := []struct {
		name    string
		tree    tree
		dir     string // root-relative; "" for none
		version int
		limit   uint64
	}{
		{name: "v2 limit on the process's cgroup",
			tree: v2Tree("/app/web", 0, tree{"app/memory.max": "max\n", "app/web/memory.max": mib(512)}),
			dir:  "sys/fs/cgroup/app/web", version: 2, limit: 512 * MiB},
		{name: "v2 limit on a parent only",
			tree: v2Tree("/app/web", 0, tree{"app/memory.max": mib(256), "app/web/memory.max": "max\n"}),
			dir:  "sys/fs/cgroup/app", version: 2, limit: 256 * MiB},
		{name: "v2 the tighter of two",
			tree: v2Tree("/app/web", 0, tree{"app/memory.max": mib(256), "app/web/memory.max": mib(1024)}),
			dir:  "sys/fs/cgroup/app", version: 2, limit: 256 * MiB},
		{name: "v1 limit",
			tree: v1Tree("/pod", 0, tree{"memory/pod/memory.limit_in_bytes": mib(1024),
				"memory/memory.limit_in_bytes": "9223372036854771712\n"}),
			dir: "sys/fs/cgroup/memory/pod", version: 1, limit: 1024 * MiB},
		{name: "v2 without a limit", tree: v2Tree("/app", 0, tree{"app/memory.max": "max\n"})},
		{name: "hybrid without a limit", tree: hybridTree()},
		{name: "no cgroups", tree: tree{"proc/meminfo": meminfoText(8192, 0)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := c.tree.build(t)
			got, ok := Detector{Root: root}.MemoryCgroup()
			if c.dir == "" {
				if ok {
					t.Fatalf("found %+v, want none", got)
				}
				return
			}
			want := MemoryCgroup{Dir: filepath.Join(root, c.dir), Version: c.version, Limit: c.limit}
			if !ok || got != want {
				t.Errorf("MemoryCgroup() = %+v, %v; want %+v", got, ok, want)
			}
		})
	}
}
