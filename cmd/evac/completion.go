package main

import "github.com/spf13/cobra"

// completionExamples are shown by `evac completion SHELL --help`.
var completionExamples = map[string]string{
	"bash": `  source <(evac completion bash)                       # this shell only
  evac completion bash > /etc/bash_completion.d/evac     # every new shell (needs bash-completion)`,
	"zsh": `  evac completion zsh > "${fpath[1]}/_evac"   # then start a new shell
  # if completion is not enabled yet: echo "autoload -U compinit; compinit" >> ~/.zshrc`,
	"fish": `  evac completion fish | source                                  # this shell only
  evac completion fish > ~/.config/fish/completions/evac.fish    # every new shell`,
	"powershell": `  evac completion powershell | Out-String | Invoke-Expression`,
}

// addCompletion adds cobra's `completion` command now rather than at
// Execute, so that it is visible to tests and carries examples like every
// other command.
func addCompletion(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Example = `  source <(evac completion bash)
  evac completion zsh > "${fpath[1]}/_evac"
  evac completion fish > ~/.config/fish/completions/evac.fish`
		for _, sh := range c.Commands() {
			sh.Example = completionExamples[sh.Name()]
		}
	}
}
