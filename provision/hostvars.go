package provision

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Per-host variables (LaunchRequest.HostVars).
//
// A run can carry variables that differ per host — the roles package gives
// each node its own service definitions — in its inventory snapshot, next
// to the consul_* variables. Extra vars would not do: they are the same
// for every host, and picking a host's part out of one big extra var
// inside the playbook means templating an expression over untrusted data.
//
// Every string at any depth is written as {"__ansible_unsafe": …}, the
// inventory's own encoding (AnsibleUnsafe), so Ansible never templates it:
// not when the variable is used directly, not when a list or map holding
// it is passed to a template or a filter. Map keys cannot be wrapped (JSON
// object keys are plain strings, and Ansible keeps them as plain str), so
// they are held to [A-Za-z0-9._-], which cannot express a Jinja
// delimiter, and may not start with "__" (Ansible's JSON decoder gives
// objects with an "__ansible_unsafe" or "__ansible_vault" key a meaning).
//
// The values are stored with the run: in the run directory's
// inventory.json and in history's copy of the inventory, which is the
// record of what each host was given. They are not redacted there, so
// names that look like secrets (IsSecretVar) and PEM blocks are refused:
// secrets go in extra vars, which history redacts.

// ErrHostVars: per-host variables (LaunchRequest.HostVars) that the
// manager refuses.
var ErrHostVars = errors.New("bad per-host variables")

// ErrRerunHostVars: Manager.Rerun of a run that carried per-host
// variables. Their values were what the caller wanted when it launched
// the run (the roles package: the desired state of then); re-applying them
// could undo a later change, so the caller must launch a new run with
// current values instead.
var ErrRerunHostVars = errors.New("a run with per-host variables cannot be re-run")

// Bounds of a run's per-host variables.
const (
	// HostVarsMaxBytes bounds the JSON of all hosts' variables together,
	// as written into the inventory (wrapping included): the snapshot is
	// written to the run directory, served to every ansible-playbook
	// process and stored in history.
	HostVarsMaxBytes = 4 << 20
	// HostVarsMaxNames bounds the distinct variable names of a run; they
	// are kept in the run's summary (RunRecord.HostVars).
	HostVarsMaxNames = 100
	// hostVarNameMax and hostVarKeyMax bound a variable's name and a map
	// key inside a value; hostVarDepth bounds nesting (and so catches a
	// map that contains itself).
	hostVarNameMax = 128
	hostVarKeyMax  = 256
	hostVarDepth   = 32
)

// hostVarKeyRE is the shape of a key of a map inside a host variable's
// value: nothing Jinja could read as a delimiter ({ } % #), no quotes, no
// whitespace.
var hostVarKeyRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// checkHostVarName checks a per-host variable's name: an identifier, not
// shadowing the inventory's own variables (consul_*), Ansible's connection
// settings and magic variables (ansible_*, hostvars, …), and not looking
// like a secret.
func checkHostVarName(name string) error {
	lower := strings.ToLower(name)
	switch {
	case !runIdentRE.MatchString(name):
		return fmt.Errorf("%w: variable name %q must be an identifier (letters, digits, _; not starting with a digit)", ErrHostVars, runShort(name))
	case len(name) > hostVarNameMax:
		return fmt.Errorf("%w: variable name %s… is %d bytes, at most %d", ErrHostVars, name[:40], len(name), hostVarNameMax)
	case strings.HasPrefix(lower, "consul_"):
		return fmt.Errorf("%w: variable %s: consul_* names are the inventory's own variables and would shadow them", ErrHostVars, name)
	case strings.HasPrefix(lower, "ansible_"):
		return fmt.Errorf("%w: variable %s: ansible_* names are Ansible's connection and behaviour settings", ErrHostVars, name)
	case runMagicVars[name]:
		return fmt.Errorf("%w: variable %s is reserved by Ansible", ErrHostVars, name)
	case IsSecretVar(name):
		return fmt.Errorf("%w: variable %s looks like a secret: per-host variables are stored unredacted with the run's inventory; pass secrets as extra vars", ErrHostVars, name)
	}
	return nil
}

// hostVarsEncoded is a request's per-host variables, checked and encoded.
type hostVarsEncoded struct {
	// vars maps a node key to its variables, each encoded (see
	// InventoryHostVars.Extra).
	vars map[string]map[string]json.RawMessage
	// names are the distinct variable names, sorted.
	names []string
}

// encodeHostVars checks a request's per-host variables against its
// targets and extra vars and encodes them. Every error wraps ErrHostVars
// and names the node, the variable and where in its value.
func encodeHostVars(hostVars map[string]map[string]any, targets, extraVars []string) (hostVarsEncoded, error) {
	enc := hostVarsEncoded{vars: make(map[string]map[string]json.RawMessage, len(hostVars))}
	if len(hostVars) == 0 {
		return enc, nil
	}
	extra := map[string]bool{}
	for _, kv := range extraVars {
		k, _, _ := strings.Cut(kv, "=")
		extra[k] = true
	}
	names := map[string]bool{}
	var e hostVarEncoder
	// Sorted, so that the error for a request with several problems is
	// always the same one.
	for _, key := range slices.Sorted(maps.Keys(hostVars)) {
		if !slices.Contains(targets, key) {
			return enc, fmt.Errorf("%w: node %q is not one of the run's targets", ErrHostVars, runShort(key))
		}
		vars := hostVars[key]
		out := make(map[string]json.RawMessage, len(vars))
		for _, name := range slices.Sorted(maps.Keys(vars)) {
			if err := checkHostVarName(name); err != nil {
				return enc, fmt.Errorf("node %s: %w", key, err)
			}
			if extra[name] {
				return enc, fmt.Errorf("%w: node %s: %s is also an extra var, which would override it on every host", ErrHostVars, key, name)
			}
			if !names[name] && len(names) == HostVarsMaxNames {
				return enc, fmt.Errorf("%w: more than %d distinct variable names", ErrHostVars, HostVarsMaxNames)
			}
			names[name] = true
			e.used += len(name) + 4 // "name": and a comma
			b, err := e.append(nil, vars[name], name, 0)
			if err != nil {
				return enc, fmt.Errorf("node %s: %w", key, err)
			}
			e.used += len(b)
			out[name] = b
		}
		enc.vars[key] = out
	}
	enc.names = slices.Sorted(maps.Keys(names))
	return enc, nil
}

// hostVarEncoder encodes a request's values. Each variable's value is
// encoded into one buffer (nested values append to it), so the buffer's
// length plus used — what the variables before it took — is what the
// request costs so far; it is checked after every value, so an oversized
// request stops at the value that crosses HostVarsMaxBytes.
type hostVarEncoder struct {
	used int
}

// append appends v as JSON, every string as an AnsibleUnsafe (the
// inventory's encoder, AnsibleUnsafe.appendJSON). path names v in errors
// ("fleetdeck_services[2].check").
func (e *hostVarEncoder) append(b []byte, v any, path string, depth int) ([]byte, error) {
	if depth > hostVarDepth {
		return nil, fmt.Errorf("%w: %s: nested more than %d deep", ErrHostVars, path, hostVarDepth)
	}
	switch x := v.(type) {
	case nil:
		b = append(b, "null"...)
	case string:
		if e.used+len(b)+len(x) > HostVarsMaxBytes {
			// Before the copy: a huge string is refused without being
			// copied again.
			return nil, fmt.Errorf("%w: %s: the run's per-host variables are more than %d bytes of JSON", ErrHostVars, path, HostVarsMaxBytes)
		}
		if err := checkHostVarString(x); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrHostVars, path, err)
		}
		b = AnsibleUnsafe(x).appendJSON(b)
	case bool:
		b = strconv.AppendBool(b, x)
	case int:
		b = strconv.AppendInt(b, int64(x), 10)
	case int8:
		b = strconv.AppendInt(b, int64(x), 10)
	case int16:
		b = strconv.AppendInt(b, int64(x), 10)
	case int32:
		b = strconv.AppendInt(b, int64(x), 10)
	case int64:
		b = strconv.AppendInt(b, x, 10)
	case uint:
		b = strconv.AppendUint(b, uint64(x), 10)
	case uint8:
		b = strconv.AppendUint(b, uint64(x), 10)
	case uint16:
		b = strconv.AppendUint(b, uint64(x), 10)
	case uint32:
		b = strconv.AppendUint(b, uint64(x), 10)
	case uint64:
		b = strconv.AppendUint(b, x, 10)
	case float32, float64:
		f, _ := x.(float64)
		if f32, ok := x.(float32); ok {
			f = float64(f32)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%w: %s: %v is not a JSON number", ErrHostVars, path, f)
		}
		// encoding/json's number format (no strings are involved).
		nb, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrHostVars, path, err)
		}
		b = append(b, nb...)
	case json.Number:
		nb, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %q is not a JSON number", ErrHostVars, path, runShort(string(x)))
		}
		b = append(b, nb...)
	case []any:
		b = append(b, '[')
		for i, el := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = e.append(b, el, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	case []string:
		return e.append(b, anySlice(x), path, depth)
	case map[string]any:
		b = append(b, '{')
		for i, k := range slices.Sorted(maps.Keys(x)) {
			if err := checkHostVarKey(k); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrHostVars, path, err)
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, k) // the key's shape needs no escapes
			b = append(b, ':')
			var err error
			if b, err = e.append(b, x[k], path+"."+k, depth+1); err != nil {
				return nil, err
			}
		}
		b = append(b, '}')
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return e.append(b, m, path, depth)
	default:
		return nil, fmt.Errorf("%w: %s: a %T is not supported (strings, bools, numbers, nil, []any, []string, map[string]any, map[string]string)", ErrHostVars, path, v)
	}
	if e.used+len(b) > HostVarsMaxBytes {
		return nil, fmt.Errorf("%w: %s: the run's per-host variables are more than %d bytes of JSON", ErrHostVars, path, HostVarsMaxBytes)
	}
	return b, nil
}

func anySlice(xs []string) []any {
	out := make([]any, len(xs))
	for i, s := range xs {
		out[i] = s
	}
	return out
}

// checkHostVarString: a string must land on the host byte for byte, so it
// must be valid UTF-8 (the JSON would carry U+FFFD instead); NUL is refused
// as extra vars refuse it; PEM blocks are refused as secrets (see the
// comment at the top).
func checkHostVarString(s string) error {
	switch {
	case !utf8.ValidString(s):
		return errors.New("a string is not UTF-8 (it could not reach the host byte for byte)")
	case strings.ContainsRune(s, 0):
		return errors.New("a string has a NUL byte")
	case histSecretValue(s):
		return errors.New("a string holds a PEM block: per-host variables are stored unredacted with the run's inventory; pass secrets as extra vars")
	}
	return nil
}

// checkHostVarKey checks a key of a map inside a value (see the comment at
// the top for why the set is small).
func checkHostVarKey(k string) error {
	switch {
	case k == "":
		return errors.New("an empty map key")
	case len(k) > hostVarKeyMax:
		return fmt.Errorf("map key %q… is %d bytes, at most %d", k[:40], len(k), hostVarKeyMax)
	case !hostVarKeyRE.MatchString(k):
		return fmt.Errorf("map key %q: only letters, digits and . _ - are allowed (keys cannot be marked unsafe, so they must not be able to hold a template)", runShort(k))
	case strings.HasPrefix(k, "__"):
		return fmt.Errorf("map key %q: keys starting with __ are read specially by Ansible's JSON decoder", k)
	case IsSecretVar(k):
		return fmt.Errorf("map key %q looks like a secret: per-host variables are stored unredacted with the run's inventory; pass secrets as extra vars", k)
	}
	return nil
}
