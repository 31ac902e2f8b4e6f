package otelsqlpool

import "strings"

// Sanitize returns query with each literal replaced by ?: strings in
// single quotes (a quote inside doubled or after a backslash; an E, X, B
// or N prefix stays), PostgreSQL dollar-quoted strings ($$...$$,
// $tag$...$tag$) and numbers (123, 1.5, 1e-3, 0x1F). Identifiers,
// keywords, placeholders ($1, ?, :name), comments and text in double
// quotes or backquotes (quoted identifiers) are kept: MySQL without
// ANSI_QUOTES reads "x" as a string, so write string literals in single
// quotes there, or pass them as arguments. An unterminated literal is
// replaced up to the end.
func Sanitize(query string) string {
	var b strings.Builder
	b.Grow(len(query))
	lit := -1 // where the last literal replaced ended
	for i := 0; i < len(query); {
		c := query[i]
		switch {
		case c == '\'':
			i = skipQuoted(query, i)
			b.WriteByte('?')
		case c == '"' || c == '`':
			j := strings.IndexByte(query[i+1:], c)
			if j < 0 {
				j = len(query) - i - 2
			}
			b.WriteString(query[i : i+j+2])
			i += j + 2
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query) - i
			}
			b.WriteString(query[i : i+j])
			i += j
		case c == '/' && strings.HasPrefix(query[i:], "/*"):
			j := strings.Index(query[i+2:], "*/")
			if j < 0 {
				j = len(query) - i - 4
			}
			b.WriteString(query[i : i+j+4])
			i += j + 4
		case c == '$' && dollarTag(query[i:]) > 0:
			tag := query[i : i+dollarTag(query[i:])]
			j := strings.Index(query[i+len(tag):], tag)
			if j < 0 {
				i = len(query)
			} else {
				i += len(tag) + j + len(tag)
			}
			b.WriteByte('?')
			lit = i
		case isDigit(c) || c == '.' && i+1 < len(query) && isDigit(query[i+1]):
			if i > 0 && i != lit && (isIdent(query[i-1]) || query[i-1] == '$') { // t1, $1
				b.WriteByte(c)
				i++
				continue
			}
			i = skipNumber(query, i)
			b.WriteByte('?')
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// skipQuoted returns the index after the string literal that opens at i.
func skipQuoted(q string, i int) int {
	for i++; i < len(q); i++ {
		switch q[i] {
		case '\\':
			i++
		case '\'':
			if i+1 < len(q) && q[i+1] == '\'' {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(q)
}

// dollarTag returns the length of the dollar-quote tag ($$ or $name$) that
// q begins with, 0 if none.
func dollarTag(q string) int {
	for j := 1; j < len(q); j++ {
		switch c := q[j]; {
		case c == '$':
			return j + 1
		case j == 1 && isDigit(c), !isIdent(c):
			return 0
		}
	}
	return 0
}

// skipNumber returns the index after the number that begins at i.
func skipNumber(q string, i int) int {
	if strings.HasPrefix(q[i:], "0x") || strings.HasPrefix(q[i:], "0X") {
		i += 2
		for i < len(q) && isHex(q[i]) {
			i++
		}
		return i
	}
	for i < len(q) && (isDigit(q[i]) || q[i] == '.') {
		i++
	}
	if i < len(q) && (q[i] == 'e' || q[i] == 'E') {
		j := i + 1
		if j < len(q) && (q[j] == '+' || q[j] == '-') {
			j++
		}
		if j < len(q) && isDigit(q[j]) {
			for i = j; i < len(q) && isDigit(q[i]); i++ {
			}
		}
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// isIdent reports whether c can be part of an identifier (bytes of
// multibyte UTF-8 letters included).
func isIdent(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c >= 0x80
}
