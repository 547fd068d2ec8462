// Command envsubst-oracle answers, one JSON line per JSON line read on stdin, what Flux's postBuild
// substitution makes of an input: tests/repo/test_envsubst_go.py compares phoebe_cli/repo/substitute.py
// with it. The versions are kustomize-controller v1.9.6's (its go.mod): github.com/fluxcd/pkg/kustomize
// v1.35.7, github.com/fluxcd/pkg/envsubst v1.7.1, sigs.k8s.io/kustomize/api and kyaml v0.21.1 (replaced, as
// there), sigs.k8s.io/yaml v1.6.0, and go.yaml.in/yaml/v2 v2.4.4 (the controller's build selects it, where
// pkg/kustomize alone would select v2.4.3): the go-yaml that sigs.k8s.io/yaml's JSONToYAML and YAMLToJSON run.
//
// Input:  {"mode": "text", "text": "...", "vars": {...}, "strict": false}
//
//	{"mode": "object", "object": {...}, "vars": {...}, "strict": false, "always": false}
//	{"mode": "yaml", "object": {...}}  (the YAML text SubstituteVariables expands: Resource.AsYAML)
//
// Output: {"out_b64": "<base64 of the expanded bytes>"} | {"object": {...}} | {"error": "..."}
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"

	"github.com/fluxcd/pkg/envsubst"
	"github.com/fluxcd/pkg/kustomize"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/resource"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

type request struct {
	Mode   string            `json:"mode"`
	Text   string            `json:"text"`
	Object json.RawMessage   `json:"object"`
	Vars   map[string]string `json:"vars"`
	Strict bool              `json:"strict"`
	Always bool              `json:"always"`
}

type response struct {
	OutB64 *string          `json:"out_b64,omitempty"`
	Object *json.RawMessage `json:"object,omitempty"`
	Error  *string          `json:"error,omitempty"`
}

// mapping is the function varSubstitution hands to envsubst.Eval (kustomize_varsub.go in
// github.com/fluxcd/pkg/kustomize v1.35.7): without the StrictPostBuildSubstitutions feature gate an
// unset variable is "" (vars[s], true); with it, (v, exists).
func mapping(vars map[string]string, strict bool) func(string) (string, bool) {
	return func(s string) (string, bool) {
		if strict {
			v, exists := vars[s]
			return v, exists
		}
		return vars[s], true
	}
}

// text: envsubst.Eval(text, mapping) as varSubstitution calls it, without the YAML around it.
func text(req request) response {
	out, err := envsubst.Eval(req.Text, mapping(req.Vars, req.Strict))
	if err != nil {
		return failure(err)
	}
	encoded := base64.StdEncoding.EncodeToString([]byte(out))
	return response{OutB64: &encoded}
}

// object: the real kustomize.SubstituteVariables on one resource, as kustomize-controller calls it for every
// resource a build makes (DryRun only skips LoadVariables, the ConfigMap/Secret lookup; the variables come
// from spec.postBuild.substitute instead, which SubstituteVariables reads with newlines removed). It writes
// the resource with Resource.AsYAML (RNode.MarshalJSON, then sigs.k8s.io/yaml.JSONToYAML), checks the
// variable names, runs envsubst.Eval with the mapping above, sigs.k8s.io/yaml.YAMLToJSON, and
// Resource.UnmarshalJSON. The answer is the resource's JSON (RNode.MarshalJSON) afterwards; a disabled
// resource (nil result) is answered unchanged, as the controller keeps it.
func object(req request) response {
	// The JSON text read as YAML, as kustomize reads a manifest (resource.Factory.makeOne wraps it the same way).
	node, err := kyaml.Parse(string(req.Object))
	if err != nil {
		return failure(fmt.Errorf("oracle: input object: %w", err))
	}
	res := &resource.Resource{RNode: *node}
	substitute := map[string]interface{}{}
	for k, v := range req.Vars {
		substitute[k] = v
	}
	ks := unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "kustomize.toolkit.fluxcd.io/v1",
		"kind":       "Kustomization",
		"metadata":   map[string]interface{}{"name": "oracle", "namespace": "flux-system"},
		"spec":       map[string]interface{}{"postBuild": map[string]interface{}{"substitute": substitute}},
	}}
	out, err := kustomize.SubstituteVariables(context.Background(), nil, ks, res,
		kustomize.SubstituteWithDryRun(true),
		kustomize.SubstituteWithStrict(req.Strict),
		kustomize.SubstituteWithAlways(req.Always))
	if err != nil {
		return failure(err)
	}
	if out == nil {
		out = res
	}
	data, err := out.MarshalJSON()
	if err != nil {
		return failure(fmt.Errorf("MarshalJSON: %w", err))
	}
	raw := json.RawMessage(data)
	return response{Object: &raw}
}

// asYAML: the text envsubst sees for a resource (Resource.AsYAML: RNode.MarshalJSON, then
// sigs.k8s.io/yaml.JSONToYAML), to show where a YAML difference comes from.
func asYAML(req request) response {
	node, err := kyaml.Parse(string(req.Object))
	if err != nil {
		return failure(fmt.Errorf("oracle: input object: %w", err))
	}
	data, err := (&resource.Resource{RNode: *node}).AsYAML()
	if err != nil {
		return failure(err)
	}
	encoded := base64.StdEncoding.EncodeToString(data)
	return response{OutB64: &encoded}
}

func failure(err error) response {
	message := err.Error()
	return response{Error: &message}
}

func answer(line []byte) (resp response) {
	defer func() {
		if r := recover(); r != nil {
			message := fmt.Sprintf("panic: %v", r)
			resp = response{Error: &message}
		}
	}()
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return failure(fmt.Errorf("oracle: bad request: %w", err))
	}
	switch req.Mode {
	case "text":
		return text(req)
	case "object":
		return object(req)
	case "yaml":
		return asYAML(req)
	}
	return failure(fmt.Errorf("oracle: unknown mode %q", req.Mode))
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	encoder := json.NewEncoder(out)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			if err := encoder.Encode(answer(line)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		if err != nil {
			break
		}
	}
}
