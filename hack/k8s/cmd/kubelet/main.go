// Command kubelet is the upstream node agent, built from the pinned k8s.io/kubernetes module so the
// test bed runs real pods (through containerd) with the same release as its control plane.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/restclient"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	// A nil context panics inside the command; the kubelet stops on SIGTERM through its own handler.
	command := app.NewKubeletCommand(context.Background())
	code := cli.Run(command)
	os.Exit(code)
}
