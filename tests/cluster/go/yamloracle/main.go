// yamloracle reads YAML the way kustomize and Flux read it, and prints what they make of it.
//
//	yamloracle file PATH...    a file of a checkout, read as kustomize reads a resource file
//	yamloracle output PATH...  kustomize's output, read as Flux's kustomize-controller reads it
//
// One JSON line per PATH: {"ok": bool, "error": "...", "line": N, "documents": [...]}.
//
// "file" follows kustomize/api's resource loading (resource.Factory.RNodesFromBytes): kio.FromBytes, which
// splits the text on `---` lines, decodes the first document of each piece with yaml.v3, unwraps a lone List
// and expands anchors, aliases and merge keys (RNode.DeAnchor); empty documents are dropped (dropBadNodes).
// Each object is then written as Resource.AsYAML writes it (RNode.MarshalJSON, then sigs.k8s.io/yaml
// JSONToYAML; resmap.AsYaml joins them), and read back as Flux reads that output (sigs.k8s.io/yaml
// YAMLToJSON). Not modelled, being about resources rather than YAML: the checks on kind and metadata.name
// (GetValidatedMetadata) and kustomize/api's inlining of FooList kinds. A document that is a lone scalar
// (MarshalJSON only takes maps and sequences) is decoded with yaml.v3 into interface{}.
//
// "output" follows fluxcd/pkg/ssa ReadObjects: k8s.io/apimachinery's YAMLReader splits the stream, each
// document goes through sigs.k8s.io/yaml YAMLToJSON (ReadObjects then decodes that JSON into Unstructured:
// integers that fit int64 stay integers, every other number becomes a float64; the caller applies that
// rule when it reads the JSON). Documents that are null are left out.
//
// "line" is the line of the file Go's error points at, when Go names one: a line in yaml.v3's message is
// relative to the piece kio decoded, and is shifted by the line that piece starts on. Errors raised while
// writing JSON name lines of the re-written text; for those the original piece is decoded again with
// yaml.v3 (which reports duplicate keys and bad tags with their own line), else "line" is 0.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/kyaml/kio"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/yaml"
)

type result struct {
	OK        bool              `json:"ok"`
	Error     string            `json:"error,omitempty"`
	Line      int               `json:"line,omitempty"`
	Documents []json.RawMessage `json:"documents"`
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "file" && os.Args[1] != "output") {
		fmt.Fprintln(os.Stderr, "usage: yamloracle file|output PATH...")
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	for _, path := range os.Args[2:] {
		data, err := os.ReadFile(path)
		var res result
		switch {
		case err != nil:
			res = result{Error: err.Error()}
		case os.Args[1] == "file":
			res = readFile(data)
		default:
			res = readOutput(data)
		}
		if res.Documents == nil {
			res.Documents = []json.RawMessage{}
		}
		if err := out.Encode(res); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func failed(err error, line int) result {
	return result{Error: err.Error(), Line: line}
}

func readFile(data []byte) result {
	nodes, err := kio.FromBytes(data)
	if err != nil {
		return failed(err, parseErrorLine(string(data)))
	}
	documents := []json.RawMessage{}
	for _, node := range nodes {
		if node.IsNilOrEmpty() {
			continue
		}
		var written []byte
		if node.YNode().Kind == kyaml.ScalarNode {
			written, err = scalarJSON(node)
		} else {
			written, err = node.MarshalJSON()
		}
		if err != nil {
			return failed(err, decodeErrorLine(string(data)))
		}
		text, err := yaml.JSONToYAML(written)
		if err != nil {
			return failed(err, 0)
		}
		flux, err := yaml.YAMLToJSON(text)
		if err != nil {
			return failed(err, 0)
		}
		documents = append(documents, flux)
	}
	return result{OK: true, Documents: documents}
}

func scalarJSON(node *kyaml.RNode) ([]byte, error) {
	text, err := node.String()
	if err != nil {
		return nil, err
	}
	var value interface{}
	if err := yamlv3.Unmarshal([]byte(text), &value); err != nil {
		return nil, err
	}
	return json.Marshal(value)
}

func readOutput(data []byte) result {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	documents := []json.RawMessage{}
	for {
		chunk, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return failed(err, 0)
		}
		converted, err := yaml.YAMLToJSON(chunk)
		if err != nil {
			return failed(err, 0)
		}
		if string(converted) == "null" {
			continue
		}
		documents = append(documents, converted)
	}
	return result{OK: true, Documents: documents}
}

// The pieces kio.ByteReader decodes one by one (splitDocuments), with the file line each starts on.
type piece struct {
	text string
	line int
}

var separatorPattern = regexp.MustCompile(`\n---.*\n`)

func split(data string) ([]piece, int) {
	s := strings.ReplaceAll(data, "\r\n", "\n")
	var pieces []piece
	prev := 0
	for _, loc := range separatorPattern.FindAllStringIndex(s, -1) {
		after := strings.TrimSpace(s[loc[0]+4 : loc[1]])
		separatorLine := strings.Count(s[:loc[0]+1], "\n") + 1
		if len(after) > 0 && after[0] != '#' {
			return nil, separatorLine
		}
		pieces = append(pieces, piece{s[prev:loc[0]] + "\n", strings.Count(s[:prev], "\n") + 1})
		prev = loc[1]
	}
	pieces = append(pieces, piece{s[prev:], strings.Count(s[:prev], "\n") + 1})
	return pieces, 0
}

var linePattern = regexp.MustCompile(`line (\d+):`)

func lineOf(err error, start int) int {
	match := linePattern.FindStringSubmatch(err.Error())
	if match == nil {
		return 0
	}
	n, _ := strconv.Atoi(match[1])
	return start + n - 1
}

// The file line of the first piece yaml.v3 cannot parse (or of a bad separator).
func parseErrorLine(data string) int {
	pieces, bad := split(data)
	if bad != 0 {
		return bad
	}
	for _, p := range pieces {
		var node yamlv3.Node
		if err := yamlv3.NewDecoder(strings.NewReader(p.text)).Decode(&node); err != nil && !errors.Is(err, io.EOF) {
			return lineOf(err, p.line)
		}
	}
	return 0
}

// The file line of the first error yaml.v3 reports decoding a piece into plain Go values.
func decodeErrorLine(data string) int {
	pieces, _ := split(data)
	for _, p := range pieces {
		var value interface{}
		if err := yamlv3.Unmarshal([]byte(p.text), &value); err != nil {
			return lineOf(err, p.line)
		}
	}
	return 0
}
