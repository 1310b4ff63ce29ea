// etcd, pinned for the Kubernetes API server the test suite starts (scripts/gotool.sh builds it
// into a cache outside the tree). The same entry point as upstream's main.go.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
