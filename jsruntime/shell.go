package jsruntime

import "strings"

// shellScript returns the script that a shell command at words[at] runs
// with -c (sh -c, bash -lc, sh -e -c ...). ok is false when the shell runs
// a script file or reads standard input.
func shellScript(words []string, at int) (script string, ok bool) {
	withC, optionsDone := false, false
	for i := at + 1; i < len(words); i++ {
		word := words[i]
		isOption := !optionsDone && len(word) > 1 && (word[0] == '-' || word[0] == '+')
		switch {
		case !isOption:
			return word, withC
		case word == "--":
			optionsDone = true
		case word == "-o" || word == "+o" || word == "--rcfile" || word == "--init-file":
			i++
		case strings.HasPrefix(word, "--"):
			// --login, --norc and the like.
		case word[0] == '-' && strings.ContainsRune(word[1:], 'c'):
			withC = true
		}
	}
	return "", false
}

// shellWords splits s into words as shellCommands does, one list for the
// whole string (the operators that end commands are dropped).
func shellWords(s string) []string {
	var words []string
	for _, command := range shellCommands(s) {
		words = append(words, command...)
	}
	return words
}

// shellCommands splits a shell script into its simple commands, each a list
// of words. It expands nothing: single and double quotes and backslashes
// group characters into words, blanks separate words, a # at the start of a
// word starts a comment, and newlines and the operators ; & | ( ) < > end a
// command (so a redirection's target starts a command of its own).
func shellCommands(script string) [][]string {
	var (
		lex      shellLexer
		commands [][]string
	)
	lex.src = script
	for {
		command, more := lex.command()
		if len(command) > 0 {
			commands = append(commands, command)
		}
		if !more {
			return commands
		}
	}
}

// shellLexer reads a shell script word by word.
type shellLexer struct {
	src string
	pos int
}

// command reads the words up to the end of the next simple command. more is
// false when the script has ended.
func (l *shellLexer) command() (words []string, more bool) {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t':
			l.pos++
		case c == '#':
			l.skipComment()
		case isShellOperator(c):
			l.pos++
			return words, true
		default:
			words = append(words, l.word())
		}
	}
	return words, false
}

// isShellOperator reports whether c ends a simple command.
func isShellOperator(c byte) bool {
	return strings.IndexByte(";&|()<>\n", c) >= 0
}

// skipComment moves past a comment, up to the newline that ends it.
func (l *shellLexer) skipComment() {
	for l.pos < len(l.src) && l.src[l.pos] != '\n' {
		l.pos++
	}
}

// word reads one word, taking quotes and backslashes off.
func (l *shellLexer) word() string {
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || isShellOperator(c):
			return b.String()
		case c == '\'':
			l.quoted(&b, '\'')
		case c == '"':
			l.quoted(&b, '"')
		case c == '\\' && l.pos+1 < len(l.src):
			b.WriteByte(l.src[l.pos+1])
			l.pos += 2
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
	return b.String()
}

// quoted reads a quoted part of a word, up to its closing quote. Inside
// double quotes a backslash escapes the next character.
func (l *shellLexer) quoted(b *strings.Builder, quote byte) {
	l.pos++ // the opening quote
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == quote:
			l.pos++
			return
		case quote == '"' && c == '\\' && l.pos+1 < len(l.src):
			b.WriteByte(l.src[l.pos+1])
			l.pos += 2
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
}
