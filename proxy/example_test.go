package proxy_test

import (
	"fmt"

	"github.com/percore/percore/proxy"
)

// The peers whose forwarding headers percore keeps unless told otherwise
// with --trusted-proxies: loopback only.
func ExampleDefaultTrusted() {
	for _, p := range proxy.DefaultTrusted() {
		fmt.Println(p)
	}
	// Output:
	// 127.0.0.0/8
	// ::1/128
}

// Named sets, CIDRs and addresses mix in one list, as --trusted-proxies
// takes it.
func ExampleParseTrusted() {
	t, err := proxy.ParseTrusted("fly, 203.0.113.0/24, 2001:db8::7")
	fmt.Println(t, err)
	_, err = proxy.ParseTrusted("loopback, 10.0.0.0/33")
	fmt.Println(err)
	// Output:
	// 172.16.0.0/12,fdaa::/16,203.0.113.0/24,2001:db8::7/128 <nil>
	// "10.0.0.0/33" is not a CIDR such as 10.0.0.0/8
}
