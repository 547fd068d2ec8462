"""phoebe: run a Flux-managed Kubernetes cluster from the terminal."""

__version__ = "0.1.0"
