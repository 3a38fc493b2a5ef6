package stdio

import (
	"slices"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "plain", in: "npx -y @modelcontextprotocol/server-everything", want: []string{"npx", "-y", "@modelcontextprotocol/server-everything"}},
		{name: "extra blanks", in: "  a \t b\n c  ", want: []string{"a", "b", "c"}},
		{name: "single quotes", in: `node 'my server.js' '$HOME \n'`, want: []string{"node", "my server.js", `$HOME \n`}},
		{name: "double quotes", in: `sh -c "echo \"hi\" \$x \n"`, want: []string{"sh", "-c", `echo "hi" $x \n`}},
		{name: "backslash outside quotes", in: `a\ b c\\d \'`, want: []string{"a b", `c\d`, "'"}},
		{name: "line continuation", in: "a \\\nb", want: []string{"a", "b"}},
		{name: "continuation in double quotes", in: "\"a\\\nb\"", want: []string{"ab"}},
		{name: "adjacent quoted parts join", in: `--x='a b'"c d"e`, want: []string{"--x=a bc de"}},
		{name: "empty quoted word", in: `a '' ""`, want: []string{"a", "", ""}},
		{name: "no expansion or globbing", in: `ls * ~ $PATH`, want: []string{"ls", "*", "~", "$PATH"}},
		{name: "unterminated single", in: `a 'b`, wantErr: true},
		{name: "unterminated double", in: `a "b\"`, wantErr: true},
		{name: "trailing backslash", in: `a \`, wantErr: true},
		{name: "empty", in: "   ", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SplitCommand(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
