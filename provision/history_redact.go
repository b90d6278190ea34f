package provision

import (
	"encoding/json"
	"regexp"
	"strings"
)

// RedactedValue replaces a secret value in the history.
const RedactedValue = "<redacted>"

// histSecretKey is the redaction rule for extra-var names: a name that
// contains, in any case, one of these words is taken for a secret. It is
// deliberately broad (ansible_become_pass, api_key, vault_token, db_auth,
// ssh_private_key_file, session_cookie …): redacting a harmless variable
// costs a less complete record; missing a secret writes it to disk.
var histSecretKey = regexp.MustCompile(`(?i)pass|pwd|secret|token|key|credential|cred|auth|private|cookie|session|signature|salt`)

// IsSecretVar reports whether an extra var named name is redacted in
// history (see RedactExtraVars).
func IsSecretVar(name string) bool { return histSecretKey.MatchString(name) }

// histSecretValue catches secrets under innocent names: PEM blocks.
func histSecretValue(v string) bool { return strings.Contains(v, "-----BEGIN") }

// RedactExtraVars returns a copy of vars in which every secret is
// "<redacted>". A value is secret when its name contains password, passwd,
// pass, pwd, secret, token, key, credential, cred, auth, private, cookie,
// session, signature or salt (in any case), or when it holds a PEM block.
// A value that is a JSON object or array is redacted inside by the same
// rule.
func RedactExtraVars(vars map[string]string) map[string]string {
	if vars == nil {
		return nil
	}
	out := make(map[string]string, len(vars))
	for k, v := range vars {
		out[k] = histRedactValue(k, v)
	}
	return out
}

func histRedactValue(key, v string) string {
	if IsSecretVar(key) || histSecretValue(v) {
		return RedactedValue
	}
	if t := strings.TrimSpace(v); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
		return histRedactJSONText(t)
	}
	return v
}

// histRedactJSONText redacts inside a JSON document; text that only looks
// like JSON (YAML flow style) is redacted whole if it names a secret.
func histRedactJSONText(t string) string {
	var doc any
	if err := json.Unmarshal([]byte(t), &doc); err != nil {
		if histSecretKey.MatchString(t) || histSecretValue(t) {
			return RedactedValue
		}
		return t
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep "<redacted>" readable
	if err := enc.Encode(histRedactJSON(doc)); err != nil {
		return RedactedValue
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func histRedactJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if IsSecretVar(k) {
				v[k] = RedactedValue
				continue
			}
			v[k] = histRedactJSON(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = histRedactJSON(e)
		}
		return v
	case string:
		if histSecretValue(v) {
			return RedactedValue
		}
		return v
	default:
		return v
	}
}

// RedactArgv returns a copy of an ansible-playbook argv whose extra vars
// (-e / --extra-vars, separate or attached) are redacted by the rule of
// RedactExtraVars: in key=value form the secret values, in JSON form the
// secret members. -e @file names a file and is kept.
func RedactArgv(argv []string) []string {
	if argv == nil {
		return nil
	}
	out := make([]string, len(argv))
	copy(out, argv)
	for i := 0; i < len(out); i++ {
		a := out[i]
		switch {
		case a == "-e" || a == "--extra-vars":
			if i+1 < len(out) {
				out[i+1] = histRedactExtraArg(out[i+1])
				i++
			}
		case strings.HasPrefix(a, "--extra-vars="):
			out[i] = "--extra-vars=" + histRedactExtraArg(strings.TrimPrefix(a, "--extra-vars="))
		case strings.HasPrefix(a, "-e") && !strings.HasPrefix(a, "--"):
			out[i] = "-e" + histRedactExtraArg(a[2:])
		}
	}
	return out
}

// histRedactExtraArg redacts one -e argument.
func histRedactExtraArg(s string) string {
	t := strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(t, "@"):
		return s
	case strings.HasPrefix(t, "{") || strings.HasPrefix(t, "["):
		return histRedactJSONText(t)
	case histSecretValue(t):
		// A PEM block spans spaces: pairs cannot be told apart.
		return RedactedValue
	}
	return histRedactKV(s)
}

// histRedactKV redacts the secret values of space-separated key=value
// pairs, values possibly quoted, keeping everything else byte for byte.
func histRedactKV(s string) string {
	var b strings.Builder
	i := 0
	for i < len(s) {
		// Copy whitespace.
		for i < len(s) && histIsSpace(s[i]) {
			b.WriteByte(s[i])
			i++
		}
		start := i
		eq := -1
		end := i
		var quote byte
		for end < len(s) {
			c := s[end]
			if quote != 0 {
				if c == quote {
					quote = 0
				}
			} else if c == '\'' || c == '"' {
				quote = c
			} else if histIsSpace(c) {
				break
			} else if c == '=' && eq < 0 {
				eq = end
			}
			end++
		}
		tok := s[start:end]
		if eq >= 0 && histRedactValue(s[start:eq], strings.Trim(s[eq+1:end], `'"`)) == RedactedValue {
			tok = s[start:eq+1] + RedactedValue
		} else if eq < 0 && histSecretValue(tok) {
			tok = RedactedValue
		}
		b.WriteString(tok)
		i = end
	}
	return b.String()
}

func histIsSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
