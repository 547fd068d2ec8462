module phoebe.local/cluster/helm-controller

go 1.26.0

require github.com/fluxcd/helm-controller v1.6.4

// The controller's own replace directives (a dependency's replaces do not apply to the main module).
replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20231025023718-d50d2fec9c98

replace (
	sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.21.1
	sigs.k8s.io/kustomize/kyaml => sigs.k8s.io/kustomize/kyaml v0.21.1
)

tool github.com/fluxcd/helm-controller
