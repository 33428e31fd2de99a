package unixfs_test

import (
	"fmt"
	"strings"

	"github.com/go-aleph/go-aleph/unixfs"
)

func ExampleSum() {
	for _, p := range unixfs.Profiles() {
		c, err := unixfs.Sum(strings.NewReader("hello world\n"), p)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(p.Name, c)
	}
	fmt.Println(unixfs.Verify(strings.NewReader("hello world\n"), "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"))
	// Output:
	// kubo-default-cidv0 QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o
	// kubo-cidv1-raw-leaves bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4
	// unixfs-v1-2025 bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4
	// <nil>
}
