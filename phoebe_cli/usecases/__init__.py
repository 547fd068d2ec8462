"""Use cases: one async function per command that gathers data through ``kube`` and returns a
frozen result from the ``flux`` model. No rendering, no exit codes."""
