package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// runAs is the user that workers (and percore, once its listeners are open)
// run as with --user.
type runAs struct {
	spec   string
	name   string
	home   string
	uid    int
	gid    int
	groups []int
}

// lookupUser resolves "name", "uid" or "name|uid:gid".
func lookupUser(spec string) (*runAs, error) {
	who, group, hasGroup := strings.Cut(spec, ":")
	u, err := user.Lookup(who)
	if err != nil {
		if _, numErr := strconv.Atoi(who); numErr != nil {
			return nil, fmt.Errorf("no user %q", who)
		}
		if u, err = user.LookupId(who); err != nil {
			u = &user.User{Uid: who, Gid: who, Username: who, HomeDir: "/"}
		}
	}
	r := &runAs{spec: spec, name: u.Username, home: u.HomeDir}
	if r.uid, err = strconv.Atoi(u.Uid); err != nil {
		return nil, fmt.Errorf("user %q has no numeric uid", who)
	}
	gid := u.Gid
	if hasGroup {
		gid = group
		if g, err := user.LookupGroup(group); err == nil {
			gid = g.Gid
		}
	}
	if r.gid, err = strconv.Atoi(gid); err != nil {
		return nil, fmt.Errorf("no group %q", group)
	}
	if ids, err := u.GroupIds(); err == nil && !hasGroup {
		for _, id := range ids {
			if n, err := strconv.Atoi(id); err == nil {
				r.groups = append(r.groups, n)
			}
		}
	}
	if len(r.groups) == 0 {
		r.groups = []int{r.gid}
	}
	return r, nil
}

func setUser(c *config, v string) error {
	if v == "" {
		c.User = nil
		return nil
	}
	r, err := lookupUser(v)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("--user needs percore to start as root")
	}
	c.User = r
	return nil
}

// env returns environ with HOME, USER and LOGNAME of the user, so tools such
// as npm find a home they may write to.
func (r *runAs) env(environ []string) []string {
	out := make([]string, 0, len(environ)+3)
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if k != "HOME" && k != "USER" && k != "LOGNAME" {
			out = append(out, kv)
		}
	}
	return append(out, "HOME="+r.home, "USER="+r.name, "LOGNAME="+r.name)
}
