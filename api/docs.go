package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
)

// openAPIDoc is the hand-written OpenAPI 3 description of every route.
//
//go:embed docs/openapi.json
var openAPIDoc []byte

// docs is the OpenAPI document and the HTML page rendered from it once.
type docs struct {
	spec openAPI
	page []byte
}

type openAPI struct {
	Info struct {
		Title       string `json:"title"`
		Description string `json:"description"`
	} `json:"info"`
	Paths      map[string]map[string]operation `json:"paths"`
	Components struct {
		Parameters map[string]parameter `json:"parameters"`
	} `json:"components"`
}

type operation struct {
	Summary     string              `json:"summary"`
	Description string              `json:"description"`
	Parameters  []parameter         `json:"parameters"`
	Responses   map[string]response `json:"responses"`
}

type parameter struct {
	Ref         string `json:"$ref"`
	Name        string `json:"name"`
	In          string `json:"in"`
	Description string `json:"description"`
	Schema      struct {
		Type string `json:"type"`
	} `json:"schema"`
}

type response struct {
	Description string `json:"description"`
}

// docRow is one endpoint of the HTML page.
type docRow struct {
	Method, Path, Summary, Description string
	Params                             []parameter
	Responses                          []docResponse
}

type docResponse struct{ Code, Description string }

var docsTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:75rem;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:1rem}
td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}.m{font-weight:bold;font-family:monospace}.p{font-family:monospace}
h2{font-size:1.05rem;margin-top:2rem}ul{margin:.2rem 0;padding-left:1.2rem}
</style></head><body>
<h1>{{.Title}}</h1><p>{{.Description}}</p>
<p>Machine-readable: <a href="/api/docs/openapi.json">/api/docs/openapi.json</a> (OpenAPI 3).</p>
<table><tr><th>Method</th><th>Path</th><th>Summary</th></tr>
{{range .Rows}}<tr><td class="m">{{.Method}}</td><td class="p"><a href="#{{.Method}}{{.Path}}">{{.Path}}</a></td><td>{{.Summary}}</td></tr>
{{end}}</table>
{{range .Rows}}<h2 id="{{.Method}}{{.Path}}"><span class="m">{{.Method}}</span> <span class="p">{{.Path}}</span></h2>
<p>{{.Summary}}{{if .Description}}. {{.Description}}{{end}}</p>
{{if .Params}}<table><tr><th>Parameter</th><th>In</th><th>Type</th><th>Description</th></tr>
{{range .Params}}<tr><td class="p">{{.Name}}</td><td>{{.In}}</td><td>{{.Schema.Type}}</td><td>{{.Description}}</td></tr>
{{end}}</table>{{end}}
<ul>{{range .Responses}}<li><b>{{.Code}}</b>: {{.Description}}</li>{{end}}</ul>
{{end}}</body></html>
`))

// loadDocs parses the embedded OpenAPI document and renders the HTML page.
func loadDocs(raw []byte) (*docs, error) {
	var spec openAPI
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, fmt.Errorf("parse openapi document: %w", err)
	}
	var rows []docRow
	for path, ops := range spec.Paths {
		for method, op := range ops {
			row := docRow{Method: strings.ToUpper(method), Path: path, Summary: op.Summary, Description: op.Description}
			for _, p := range op.Parameters {
				if p.Ref != "" {
					name := strings.TrimPrefix(p.Ref, "#/components/parameters/")
					resolved, ok := spec.Components.Parameters[name]
					if !ok {
						return nil, fmt.Errorf("openapi document: %s %s: unknown parameter %s", method, path, p.Ref)
					}
					p = resolved
				}
				row.Params = append(row.Params, p)
			}
			for code, resp := range op.Responses {
				row.Responses = append(row.Responses, docResponse{code, resp.Description})
			}
			sort.Slice(row.Responses, func(i, j int) bool { return row.Responses[i].Code < row.Responses[j].Code })
			rows = append(rows, row)
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Path != rows[j].Path {
			return rows[i].Path < rows[j].Path
		}
		return rows[i].Method < rows[j].Method
	})
	var buf bytes.Buffer
	err := docsTemplate.Execute(&buf, struct {
		Title, Description string
		Rows               []docRow
	}{spec.Info.Title, spec.Info.Description, rows})
	if err != nil {
		return nil, fmt.Errorf("render docs page: %w", err)
	}
	return &docs{spec: spec, page: buf.Bytes()}, nil
}

// mustLoadDocs loads the embedded document; it can only fail if the file
// committed with the package is broken, which the tests catch.
func mustLoadDocs() *docs {
	d, err := loadDocs(openAPIDoc)
	if err != nil {
		panic("api: " + err.Error())
	}
	return d
}

func (s *server) docsPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", itoa(len(s.docs.page)))
	_, _ = w.Write(s.docs.page)
}

func (s *server) openAPI(w http.ResponseWriter, r *http.Request) {
	writeRaw(w, http.StatusOK, openAPIDoc)
}
