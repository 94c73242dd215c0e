package examples_test

import (
	"archive/tar"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// rootfs is an image's file system assembled from this machine's own files
// (no registry is needed), written as a tar stream for `podman import`.
type rootfs struct {
	entries map[string]rootfsEntry // by path in the image
	env     []string               // the image's ENV, NAME=value
}

// rootfsEntry is one file, directory or symbolic link of a rootfs.
type rootfsEntry struct {
	src  string // the file on this machine, or "" for data, a directory or a link
	data []byte
	link string // a symbolic link's target
	dir  bool
	mode fs.FileMode // permission bits (and sticky)
	uid  int
}

func newRootfs() *rootfs { return &rootfs{entries: map[string]rootfsEntry{}} }

// file adds the machine's file src (symbolic links followed) at dst.
func (r *rootfs) file(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	r.entries[dst] = rootfsEntry{src: src, mode: fi.Mode().Perm()}
	return nil
}

// binary adds the executable src at dst and the shared libraries it loads,
// each at the path the dynamic loader finds it on this machine.
func (r *rootfs) binary(src, dst string) error {
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if err := r.file(real, dst); err != nil {
		return err
	}
	libs, err := sharedLibraries(real)
	if err != nil {
		return err
	}
	for _, lib := range libs {
		if err := r.file(lib, lib); err != nil {
			return err
		}
	}
	return nil
}

// tree adds the directory src at dst with everything in it; symbolic links
// are kept as links.
func (r *rootfs) tree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := path.Join(dst, filepath.ToSlash(rel))
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			r.dir(to, fi.Mode().Perm(), 0)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			r.symlink(target, to)
		case fi.Mode().IsRegular():
			r.entries[to] = rootfsEntry{src: p, mode: fi.Mode().Perm()}
		}
		return nil
	})
}

// dir adds a directory owned by uid.
func (r *rootfs) dir(dst string, mode fs.FileMode, uid int) {
	r.entries[dst] = rootfsEntry{dir: true, mode: mode, uid: uid}
}

// symlink adds a symbolic link at dst that points to target.
func (r *rootfs) symlink(target, dst string) {
	r.entries[dst] = rootfsEntry{link: target, mode: 0o777}
}

// data adds a file with the given content.
func (r *rootfs) data(dst string, content string, mode fs.FileMode) {
	r.entries[dst] = rootfsEntry{data: []byte(content), mode: mode}
}

// paths returns the entries' paths with every parent directory before its
// children, so that a tar of them can be unpacked in order.
func (r *rootfs) paths() []string {
	ps := make([]string, 0, len(r.entries))
	for p := range r.entries {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// tag names this content: a hash of every entry's path, source, size,
// modification time and mode, and of the ENV. An image imported under it
// is reused as long as the machine's files are unchanged.
func (r *rootfs) tag() (string, error) {
	h := sha256.New()
	for _, p := range r.paths() {
		e := r.entries[p]
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%t\x00%o\x00%d\x00%x\x00", p, e.src, e.link, e.dir, e.mode, e.uid, sha256.Sum256(e.data))
		if e.src != "" {
			fi, err := os.Stat(e.src)
			if err != nil {
				return "", fmt.Errorf("rootfs: %w", err)
			}
			fmt.Fprintf(h, "%d\x00%d\x00", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	fmt.Fprintf(h, "%q", r.env)
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// writeTar writes the rootfs as a tar stream, each missing parent
// directory as root's with mode 0755.
func (r *rootfs) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	written := map[string]bool{"/": true}
	var parents func(p string) error
	parents = func(p string) error {
		parent := path.Dir(p)
		if written[parent] {
			return nil
		}
		if err := parents(parent); err != nil {
			return err
		}
		written[parent] = true
		if _, ok := r.entries[parent]; ok {
			return r.writeEntry(tw, parent)
		}
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(parent, "/") + "/", Mode: 0o755})
	}
	for _, p := range r.paths() {
		if written[p] {
			continue
		}
		if err := parents(p); err != nil {
			return err
		}
		written[p] = true
		if err := r.writeEntry(tw, p); err != nil {
			return err
		}
	}
	return tw.Close()
}

// writeEntry writes the entry at p.
func (r *rootfs) writeEntry(tw *tar.Writer, p string) error {
	e := r.entries[p]
	name := strings.TrimPrefix(p, "/")
	hdr := &tar.Header{Name: name, Mode: int64(e.mode), Uid: e.uid, Gid: e.uid}
	if e.mode&fs.ModeSticky != 0 {
		hdr.Mode = int64(e.mode.Perm()) | 0o1000
	}
	switch {
	case e.dir:
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		return tw.WriteHeader(hdr)
	case e.link != "":
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
		return tw.WriteHeader(hdr)
	case e.src == "":
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(e.data)
		return err
	}
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("rootfs: copy %s: %w", e.src, err)
	}
	return nil
}

// sharedLibraries lists the shared libraries bin loads, its dynamic loader
// included, as ldd finds them on this machine; none for a static binary.
func sharedLibraries(bin string) ([]string, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	dynamic := false
	for _, p := range f.Progs {
		dynamic = dynamic || p.Type == elf.PT_INTERP
	}
	f.Close()
	if !dynamic {
		return nil, nil
	}
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("rootfs: ldd %s: %w", bin, err)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO has no file.
		f := strings.Fields(line)
		if i := slices.Index(f, "=>"); i >= 0 && i+1 < len(f) {
			f = f[i+1:]
		}
		if len(f) > 0 && strings.HasPrefix(f[0], "/") {
			libs = append(libs, f[0])
		}
	}
	return libs, nil
}
