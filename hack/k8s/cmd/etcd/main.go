// Command etcd is the etcd server at the exact version k8s.io/kubernetes pins, built in the same
// module so one `go build` shares the compile cache with the Kubernetes binaries.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
