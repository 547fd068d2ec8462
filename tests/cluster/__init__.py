"""A real control plane for phoebe's tests and demo: kube-apiserver and etcd built from the Go
module proxy, the Flux CRDs from the controllers' modules, and helpers to drive it.

Run ``python -m tests.cluster --help`` for the command line (build, up, down, env)."""
