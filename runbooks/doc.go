// Package runbooks is the drill runbook format: parsing, offline validation,
// templating of parameters, and the runbooks evac ships (runbooks/*.yaml).
//
// Why it is shaped this way:
//   - A runbook is decoded into a yaml.Node, not a struct, so every error names
//     the file, the line and the field (`chaos-kong.yaml:12: steps[3].shift.weight:
//     150 is not within 0..100`) and a file is validated whole: every problem is
//     reported at once.
//   - Step fields are strings that may be Go templates over the parameters
//     (`region: "{{ .region }}"`, missingkey=error). A field without a template
//     is type-checked at parse time; a templated one when the drill starts
//     (Render), with the same line and field in the message.
//   - The package is pure and has no dependency on the replicated state: the
//     controllers' Apply re-parses and renders a runbook's source on every
//     replica and gets the same steps.
package runbooks
