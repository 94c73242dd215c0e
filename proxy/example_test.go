package proxy_test

import (
	"fmt"

	"github.com/percore/percore/proxy"
)

// The peers whose X-Forwarded-* headers percore keeps unless told otherwise
// with --trusted-proxies.
func ExampleDefaultTrusted() {
	for _, p := range proxy.DefaultTrusted() {
		fmt.Println(p)
	}
	// Output:
	// 127.0.0.0/8
	// ::1/128
	// 10.0.0.0/8
	// 172.16.0.0/12
	// 192.168.0.0/16
	// fc00::/7
	// fe80::/10
	// 100.64.0.0/10
}
