package ui

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

func serve(t *testing.T) *httptest.Server {
	t.Helper()
	r := mux.NewRouter()
	Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func TestServesDashboard(t *testing.T) {
	srv := serve(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, _ := get(t, noRedirect, srv.URL+"/ui")
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET /ui: %d Location %q, want a redirect to /ui/", res.StatusCode, res.Header.Get("Location"))
	}
	res, body := get(t, http.DefaultClient, srv.URL+"/ui/")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `id="signin-form"`) {
		t.Fatalf("GET /ui/: %d, body without the sign-in form", res.StatusCode)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Fatalf("Content-Security-Policy = %q", csp)
	}
	for path, ctype := range map[string]string{"app.js": "javascript", "style.css": "text/css"} {
		res, _ := get(t, http.DefaultClient, srv.URL+"/ui/"+path)
		if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Type"), ctype) {
			t.Errorf("GET /ui/%s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	if res, _ := get(t, http.DefaultClient, srv.URL+"/ui/nope.js"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/nope.js: %d, want 404", res.StatusCode)
	}
}

// The page loads nothing from elsewhere: every src and href is a file of
// the embedded tree, and no file names a remote URL.
func TestSelfContained(t *testing.T) {
	files := Files()
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(string(index), -1) {
		if _, err := fs.Stat(files, m[1]); err != nil {
			t.Errorf("index.html refers to %q, which is not embedded", m[1])
		}
	}
	err = fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		// An SVG's namespace is a name, not a place anything is fetched from.
		b = bytes.ReplaceAll(b, []byte(`xmlns="http://www.w3.org/2000/svg"`), nil)
		if regexp.MustCompile(`https?://`).Match(b) {
			t.Errorf("%s names a remote URL", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Every API call goes through api(), which sets the Bearer token; the one
// other fetch (drills) sets it too.
func TestEveryFetchSendsToken(t *testing.T) {
	js, err := fs.ReadFile(Files(), "app.js")
	if err != nil {
		t.Fatal(err)
	}
	src := string(js)
	fetches := strings.Count(src, "fetch(")
	withToken := strings.Count(src, `"Authorization": "Bearer " + token`)
	if fetches == 0 || fetches != withToken {
		t.Fatalf("%d fetch calls, %d with the Bearer header", fetches, withToken)
	}
}
