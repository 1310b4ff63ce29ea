// kube-apiserver from k8s.io/kubernetes v1.37.2 (its cmd/kube-apiserver/apiserver.go), pinned for the
// test suite's real API server. Its staging modules are replaced by their published k8s.io
// releases (go.mod), since k8s.io/kubernetes points them at ./staging. Built by scripts/gotool.sh.
package main

import (
	"os"
	_ "time/tzdata" // for timeZone support in CronJob

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // load all the prometheus client-go plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	command := app.NewAPIServerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
