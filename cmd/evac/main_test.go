package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every command of the binary, the client commands, server, agent, dev,
// validate, version and completion alike, has a summary and examples.
func TestEveryCommandHasExample(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Name() == "help" {
				continue
			}
			n++
			if sub.Short == "" || strings.TrimSpace(sub.Example) == "" {
				t.Errorf("%s lacks Short or Example", sub.CommandPath())
			}
			walk(sub)
		}
	}
	walk(newRootCmd())
	if n < 20 {
		t.Fatalf("walked only %d commands", n)
	}
}

func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "__start_evac",
		"zsh":  "#compdef evac",
		"fish": "complete -c evac",
	} {
		out := captureStdout(t, func() {
			// cobra's completion command binds os.Stdout when it is made.
			root := newRootCmd()
			root.SetArgs([]string{"completion", shell})
			if err := root.Execute(); err != nil {
				t.Fatalf("completion %s: %v", shell, err)
			}
		})
		if !strings.Contains(out, want) {
			t.Errorf("completion %s: output lacks %q", shell, want)
		}
	}
	// The dynamic completion the scripts call lists subcommands.
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{cobra.ShellCompRequestCmd, ""})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"evacuate", "restore", "regions", "completion"} {
		if !strings.Contains(out.String(), sub) {
			t.Errorf("__complete ev...: %q lacks %s", out.String(), sub)
		}
	}
}

func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	tmp, err := os.CreateTemp(t.TempDir(), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	saved := os.Stdout
	os.Stdout = tmp
	defer func() { os.Stdout = saved }()
	f()
	b, err := os.ReadFile(tmp.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
