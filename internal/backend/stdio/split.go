package stdio

import (
	"errors"
	"strings"
)

// SplitCommand splits a command line into argv the way a POSIX shell splits
// words: blanks separate words; single quotes keep everything literally;
// double quotes keep everything except that a backslash escapes $ ` " \
// and a newline; outside quotes a backslash escapes any character, and
// backslash-newline joins lines. Nothing is expanded or globbed: "$HOME"
// and "*" stay as written. An unterminated quote or a trailing backslash is
// an error, as is a line with no words.
func SplitCommand(s string) ([]string, error) {
	var (
		args   []string
		word   strings.Builder
		inWord bool // a word has started (quotes can start an empty one)
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				args = append(args, word.String())
				word.Reset()
				inWord = false
			}
		case c == '\\':
			i++
			if i == len(s) {
				return nil, errors.New("split command: trailing backslash")
			}
			if s[i] != '\n' {
				word.WriteByte(s[i])
				inWord = true
			}
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("split command: unterminated single quote")
			}
			word.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
					if s[i] == '\n' {
						continue
					}
				}
				word.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, errors.New("split command: unterminated double quote")
			}
			inWord = true
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, word.String())
	}
	if len(args) == 0 {
		return nil, errors.New("split command: no command")
	}
	return args, nil
}
