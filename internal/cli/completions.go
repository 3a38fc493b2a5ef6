package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/paygate/paygate/internal/config"
)

// The completion scripts are generated from the command table and the flag
// table, so a new command or flag completes without touching this file.

func runCompletions(_ context.Context, inv *invocation, args []string) int {
	if wantsHelp(args) {
		completionsHelp(inv.io.Stdout)
		return ExitOK
	}
	if len(args) != 1 {
		return inv.usage("completions", errors.New("name one shell: paygate completions bash|zsh|fish"))
	}
	switch args[0] {
	case "bash":
		bashCompletion(inv.io.Stdout)
	case "zsh":
		zshCompletion(inv.io.Stdout)
	case "fish":
		fishCompletion(inv.io.Stdout)
	default:
		return inv.usage("completions", fmt.Errorf("unknown shell %q; choose bash, zsh or fish", args[0]))
	}
	return ExitOK
}

// completionFlags are the flags worth completing (compat ones are not).
func completionFlags() []*config.Flag {
	var out []*config.Flag
	for _, f := range config.Flags() {
		if !f.Compat {
			out = append(out, f)
		}
	}
	return out
}

// flagCommands are the commands that take wrap's flags.
const flagCommands = "wrap validate"

func bashCompletion(w io.Writer) {
	var all, files, valued []string
	cases := ""
	for _, f := range completionFlags() {
		all = append(all, "--"+f.Name)
		switch {
		case f.Path:
			files = append(files, "--"+f.Name)
		case len(f.Values) > 0:
			cases += fmt.Sprintf("        --%s) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", f.Name, strings.Join(f.Values, " "))
		case !f.IsSwitch():
			valued = append(valued, "--"+f.Name)
		}
	}
	all = append(all, "--help")
	fmt.Fprintf(w, `# bash completion for paygate
# Install: paygate completions bash > ~/.local/share/bash-completion/completions/paygate

_paygate() {
    local cur prev i
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev=""
    if [[ $COMP_CWORD -gt 0 ]]; then prev="${COMP_WORDS[COMP_CWORD-1]}"; fi
    COMPREPLY=()

    if [[ $COMP_CWORD -le 1 ]]; then
        COMPREPLY=($(compgen -W "%[1]s --help --version" -- "$cur"))
        return
    fi

    case "${COMP_WORDS[1]}" in
    %[2]s)
        # After "--" comes the server's own command line.
        for ((i = 2; i < COMP_CWORD; i++)); do
            if [[ "${COMP_WORDS[i]}" == "--" ]]; then
                if [[ $i -eq $((COMP_CWORD - 1)) ]]; then
                    COMPREPLY=($(compgen -c -- "$cur"))
                else
                    compopt -o filenames 2>/dev/null
                    COMPREPLY=($(compgen -f -- "$cur"))
                fi
                return
            fi
        done
        if [[ "$cur" == --*=* ]]; then
            prev="${cur%%%%=*}"
            cur="${cur#*=}"
        fi
        case "$prev" in
        %[3]s)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
%[4]s        %[5]s)
            return ;;
        esac
        if [[ "$cur" == -* || -z "$cur" ]]; then
            COMPREPLY=($(compgen -W "%[6]s" -- "$cur"))
        fi
        ;;
    version)
        COMPREPLY=($(compgen -W "--json --help" -- "$cur"))
        ;;
    completions)
        if [[ $COMP_CWORD -eq 2 ]]; then
            COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur"))
        fi
        ;;
    help)
        if [[ $COMP_CWORD -eq 2 ]]; then
            COMPREPLY=($(compgen -W "%[1]s" -- "$cur"))
        fi
        ;;
    esac
}

complete -F _paygate paygate
`, strings.Join(commandNames(), " "), strings.ReplaceAll(flagCommands, " ", "|"),
		strings.Join(files, "|"), cases, strings.Join(valued, "|"), strings.Join(all, " "))
}

// zshQuote escapes text for a single-quoted _arguments spec.
func zshQuote(s string) string {
	s = strings.NewReplacer(`'`, `'\''`, `[`, `\[`, `]`, `\]`, `:`, `\:`).Replace(s)
	return s
}

func zshCompletion(w io.Writer) {
	var b strings.Builder
	b.WriteString(`#compdef paygate
# zsh completion for paygate
# Install: paygate completions zsh > ~/.zfunc/_paygate
# and in ~/.zshrc: fpath=(~/.zfunc $fpath); autoload -U compinit && compinit

_paygate() {
  local -a commands wrap_flags
  local state line
  commands=(
`)
	for _, c := range commands() {
		fmt.Fprintf(&b, "    '%s:%s'\n", c.name, zshQuote(c.summary))
	}
	b.WriteString("  )\n  wrap_flags=(\n")
	for _, f := range completionFlags() {
		spec := "--" + f.Name
		if f.Repeatable {
			spec = "*" + spec
		}
		if f.IsSwitch() {
			fmt.Fprintf(&b, "    '%s[%s]'\n", spec, zshQuote(f.Usage))
			continue
		}
		action := ""
		switch {
		case f.Path:
			action = "_files"
		case len(f.Values) > 0:
			action = "(" + strings.Join(f.Values, " ") + ")"
		}
		fmt.Fprintf(&b, "    '%s=[%s]:%s:%s'\n", spec, zshQuote(f.Usage), zshQuote(strings.ToLower(strings.Trim(f.Arg, "'"))), action)
	}
	b.WriteString(`    '(- *)--help[show help]'
    '*::server command:_normal'
  )

  _arguments -C '1: :->command' '*:: :->args'
  case $state in
    command)
      _describe -t commands 'paygate command' commands
      ;;
    args)
      case $line[1] in
        wrap|validate)
          _arguments -s $wrap_flags
          ;;
        version)
          _arguments '--json[print JSON]' '--help[show help]'
          ;;
        completions)
          _values 'shell' bash zsh fish
          ;;
        help)
          _describe -t commands 'paygate command' commands
          ;;
      esac
      ;;
  esac
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _paygate "$@"
else
  compdef _paygate paygate
fi
`)
	io.WriteString(w, b.String())
}

// fishQuote quotes text for fish.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func fishCompletion(w io.Writer) {
	var b strings.Builder
	b.WriteString(`# fish completion for paygate
# Install: paygate completions fish > ~/.config/fish/completions/paygate.fish

complete -c paygate -f
`)
	for _, c := range commands() {
		fmt.Fprintf(&b, "complete -c paygate -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
	}
	cond := fishQuote("__fish_seen_subcommand_from " + flagCommands)
	for _, f := range completionFlags() {
		line := fmt.Sprintf("complete -c paygate -n %s -l %s", cond, f.Name)
		switch {
		case f.Path:
			line += " -r -F"
		case len(f.Values) > 0:
			line += " -x -a " + fishQuote(strings.Join(f.Values, " "))
		case !f.IsSwitch():
			line += " -x"
		}
		b.WriteString(line + " -d " + fishQuote(f.Usage) + "\n")
	}
	fmt.Fprintf(&b, "complete -c paygate -n %s -l json -d %s\n", fishQuote("__fish_seen_subcommand_from version"), fishQuote("print JSON"))
	fmt.Fprintf(&b, "complete -c paygate -n %s -a 'bash zsh fish'\n", fishQuote("__fish_seen_subcommand_from completions"))
	fmt.Fprintf(&b, "complete -c paygate -n %s -a %s\n", fishQuote("__fish_seen_subcommand_from help"), fishQuote(strings.Join(commandNames(), " ")))
	io.WriteString(w, b.String())
}
