module phoebe.local/cluster/source-controller

go 1.26.0

require github.com/fluxcd/source-controller v1.9.6

// The controller's own replace directive (a dependency's replaces do not apply to the main module).
replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20220411205349-bde1400a84be

// v1.9.6 asks for pkg/artifact v0.18.3, which the Go module proxy does not serve; v0.18.0 is
// served and compatible.
replace github.com/fluxcd/pkg/artifact => github.com/fluxcd/pkg/artifact v0.18.0
