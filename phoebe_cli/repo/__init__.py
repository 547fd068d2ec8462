"""The Git side: read a GitOps checkout the way Flux does (kustomize builds, substitution) into a
model of the desired state, offline."""
