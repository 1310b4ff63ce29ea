// kustomize, pinned for `make manifests` (scripts/gotool.sh builds it into a cache outside the
// tree). The same entry point as the upstream CLI's main.go.
package main

import (
	"os"

	"sigs.k8s.io/kustomize/kustomize/v5/commands"
)

func main() {
	if err := commands.NewDefaultCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
