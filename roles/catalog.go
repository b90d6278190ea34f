package roles

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// RolesFile is the name of the role catalog file in the playbook
// directory.
const RolesFile = "roles.toml"

// AddressPlaceholder is the one placeholder of a check's HTTP URL or TCP
// address: the node's address.
const AddressPlaceholder = "{address}"

// Limits of a role's definition.
const (
	maxNameLen = 63
	maxTagLen  = 255
	// DefaultInterval is the interval of an HTTP or TCP check that names
	// none: Consul requires one, and a catalog entry that omits it should
	// not fail on every node at reload time.
	DefaultInterval = 10 * time.Second
	minInterval     = time.Second
	maxDuration     = 24 * time.Hour
	maxCatalogFile  = 1 << 20
	maxCheckTarget  = 2048
)

// isScriptKey reports Consul check keys that run code on the node. They
// are refused by name, with a message that says why, rather than as
// unknown keys: someone who writes one expects it to work.
func isScriptKey(k string) bool {
	switch k {
	case "args", "script", "shell", "docker_container_id":
		return true
	}
	return false
}

// Catalog is the set of roles that can be assigned, keyed by name. A
// Catalog is immutable once built and safe for concurrent use; a nil
// *Catalog is an empty one.
type Catalog struct {
	roles map[string]Role
	names []string
}

// NewCatalog builds a catalog from roles, validated as a parsed role is
// (defaults applied); a name given twice is an error naming both sources.
func NewCatalog(roles ...Role) (*Catalog, error) {
	c := &Catalog{roles: make(map[string]Role, len(roles))}
	var errs []error
	for _, r := range roles {
		nr, err := normalize(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := c.roles[nr.Name]; dup {
			errs = append(errs, fmt.Errorf("role %q is defined twice: %s and %s", nr.Name, prev.Source, nr.Source))
			continue
		}
		c.roles[nr.Name] = nr
		c.names = append(c.names, nr.Name)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.Sort(c.names)
	return c, nil
}

// Merge combines catalogs (the config file's and the playbook directory's
// roles.toml). A role defined in two of them is an error naming both
// sources: which one wins would otherwise depend on the order of loading,
// and an engineer reading one file would not see the definition in use.
func Merge(cs ...*Catalog) (*Catalog, error) {
	var all []Role
	for _, c := range cs {
		if c == nil {
			continue
		}
		for _, n := range c.names {
			all = append(all, c.roles[n])
		}
	}
	return NewCatalog(all...)
}

// Lookup returns the role called name. The Role is a copy: changing its
// tags does not change the catalog.
func (c *Catalog) Lookup(name string) (Role, bool) {
	if c == nil {
		return Role{}, false
	}
	r, ok := c.roles[name]
	if !ok {
		return Role{}, false
	}
	r.Tags = slices.Clone(r.Tags)
	if r.Check != nil {
		ck := *r.Check
		r.Check = &ck
	}
	return r, true
}

// Names returns the catalogued role names, sorted.
func (c *Catalog) Names() []string {
	if c == nil {
		return nil
	}
	return slices.Clone(c.names)
}

// Len is the number of roles.
func (c *Catalog) Len() int {
	if c == nil {
		return 0
	}
	return len(c.names)
}

// Validate checks that every one of names is a catalogued role, before a
// change is made: a bad name or an unknown role is an error that lists
// the known roles, so the user sees the spelling they meant.
func (c *Catalog) Validate(names []string) error {
	var bad, unknown []string
	for _, n := range names {
		if err := ValidName(n); err != nil {
			bad = append(bad, err.Error())
			continue
		}
		if _, ok := c.Lookup(n); !ok {
			unknown = append(unknown, strconv.Quote(n))
		}
	}
	var errs []error
	if len(bad) > 0 {
		errs = append(errs, errors.New(strings.Join(bad, "; ")))
	}
	if len(unknown) > 0 {
		what := "unknown role " + unknown[0]
		if len(unknown) > 1 {
			what = "unknown roles " + strings.Join(unknown, ", ")
		}
		if c.Len() == 0 {
			errs = append(errs, fmt.Errorf("%s: the role catalog is empty (define roles as [roles.NAME] in the config file or in %s in the playbook directory)", what, RolesFile))
		} else {
			errs = append(errs, fmt.Errorf("%s (known roles: %s)", what, strings.Join(c.names, ", ")))
		}
	}
	return errors.Join(errs...)
}

// ValidName checks a role name: 1–63 characters of [a-z0-9-], not
// starting with '-'. The name becomes a service name, a service ID
// ("fleetdeck-NAME") and a file name, so nothing else is allowed: no
// path separators, no dots, nothing a shell or Jinja would read.
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("role name is empty")
	case len(name) > maxNameLen:
		return fmt.Errorf("role name %.20q… is %d characters, more than %d", name, len(name), maxNameLen)
	case name[0] == '-':
		return fmt.Errorf("role name %q starts with '-'", name)
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return fmt.Errorf("role name %q has %q: only a-z, 0-9 and '-' are allowed", name, r)
		}
	}
	return nil
}

// ExpandAddress replaces the address placeholder of a check's HTTP URL or
// TCP address with address, bracketed when it is an IPv6 literal (as a URL
// and host:port need it).
func ExpandAddress(s, address string) string {
	if strings.Contains(address, ":") && !strings.HasPrefix(address, "[") {
		address = "[" + address + "]"
	}
	return strings.ReplaceAll(s, AddressPlaceholder, address)
}

// Config is the [roles] table of the config file: its settings and the
// roles it defines.
type Config struct {
	// KVPrefix is [roles] kv_prefix ("" when not set: DefaultKVPrefix).
	KVPrefix string
	// Playbook is [roles] playbook, as written ("" when not set).
	Playbook string
	// Catalog holds the [roles.NAME] tables (empty when none).
	Catalog *Catalog
	// Defaults is [roles.defaults]: autoscaling group → the roles its new
	// nodes get from the deployment server (nil when not set). "defaults"
	// is therefore not a role name.
	Defaults map[string][]string
}

// DefaultsTable is the [roles] entry that is not a role: the groups'
// default roles.
const DefaultsTable = "defaults"

// DecodeConfig decodes the [roles] table of the config file named source
// from the document's metadata md and the table's primitive (nil when the
// file has no [roles] table). The config file's decoder keeps the table
// as a primitive:
//
//	type fileConfig struct {
//		...
//		Roles *toml.Primitive `toml:"roles,omitempty"`
//	}
//	md, err := toml.DecodeFile(path, &fc)
//	rc, err := roles.DecodeConfig(md, fc.Roles, path) // before unknownKeys(path, md)
//
// Decoding marks the table's keys as decoded in md, so the config file's
// own unknown-key check sees only what is unknown elsewhere; unknown keys
// inside [roles] are reported here, naming role, key and file. (A pointer
// rather than a toml.Primitive value: the TOML encoder panics on a zero
// Primitive, and the demo encodes fileConfig.)
func DecodeConfig(md toml.MetaData, table *toml.Primitive, source string) (Config, error) {
	cfg := Config{Catalog: &Catalog{roles: map[string]Role{}}}
	if table == nil {
		return cfg, nil
	}
	settings := map[string]*string{"kv_prefix": &cfg.KVPrefix, "playbook": &cfg.Playbook}
	defaults := func(p toml.Primitive) error {
		if err := md.PrimitiveDecode(p, &cfg.Defaults); err != nil {
			return fmt.Errorf("%s: [roles.defaults] maps a group to its roles (web-asg = [\"web\"]): %w", source, err)
		}
		var errs []error
		for group, rs := range cfg.Defaults {
			for _, r := range rs {
				if err := ValidName(r); err != nil {
					errs = append(errs, fmt.Errorf("%s: roles.defaults.%s: %w", source, group, err))
				}
			}
		}
		return errors.Join(errs...)
	}
	cat, err := decodeRoles(md, *table, source, defaults, func(name string, p toml.Primitive) error {
		dst, ok := settings[name]
		if !ok {
			return fmt.Errorf("%s: unknown key roles.%s (a role is a table, [roles.NAME]; the settings are kv_prefix and playbook)", source, name)
		}
		if err := md.PrimitiveDecode(p, dst); err != nil {
			return fmt.Errorf("%s: roles.%s: %w", source, name, err)
		}
		return nil
	})
	if err != nil {
		return Config{}, err
	}
	cfg.Catalog = cat
	return cfg, nil
}

// Parse parses a role catalog document (the playbook directory's
// roles.toml) named source: [roles.NAME] tables and nothing else; the
// settings of [roles] belong in the config file.
func Parse(data []byte, source string) (*Catalog, error) {
	var doc struct {
		Roles *toml.Primitive `toml:"roles"`
	}
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var errs []error
	reported := map[string]bool{}
	for _, k := range md.Undecoded() {
		if k[0] != "roles" && !reported[k[0]] {
			reported[k[0]] = true
			errs = append(errs, fmt.Errorf("%s: unknown key %s (%s holds only [roles.NAME] tables)", source, k[0], RolesFile))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if doc.Roles == nil {
		return &Catalog{roles: map[string]Role{}}, nil
	}
	noDefaults := func(toml.Primitive) error {
		return fmt.Errorf("%s: [roles.defaults] (the groups' default roles) belongs in the config file, not in %s", source, RolesFile)
	}
	return decodeRoles(md, *doc.Roles, source, noDefaults, func(name string, _ toml.Primitive) error {
		return fmt.Errorf("%s: roles.%s is not a role table ([roles.NAME]); the settings of [roles] belong in the config file", source, name)
	})
}

// ReadDir reads the role catalog of playbook directory dir (its
// roles.toml); a directory without one has an empty catalog.
func ReadDir(dir string) (*Catalog, error) {
	path := filepath.Join(dir, RolesFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Catalog{roles: map[string]Role{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the role catalog: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCatalogFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading the role catalog %s: %w", path, err)
	}
	if len(data) > maxCatalogFile {
		return nil, fmt.Errorf("reading the role catalog %s: larger than %d bytes", path, maxCatalogFile)
	}
	return Parse(data, path)
}

// roleTOML and checkTOML are a role as written. Pointers tell a key that
// is absent from one written empty or zero.
type roleTOML struct {
	Port  *int64     `toml:"port"`
	Tags  []string   `toml:"tags"`
	Check *checkTOML `toml:"check"`
}

type checkTOML struct {
	HTTP     *string `toml:"http"`
	TCP      *string `toml:"tcp"`
	TTL      *string `toml:"ttl"`
	Interval *string `toml:"interval"`
	Timeout  *string `toml:"timeout"`
}

// decodeRoles decodes the [roles] table: each sub-table is a role; other
// entries go to scalar (settings in the config file, errors in roles.toml).
// Every error is collected, so that one pass over the file shows them all.
func decodeRoles(md toml.MetaData, table toml.Primitive, source string, defaults func(toml.Primitive) error, scalar func(string, toml.Primitive) error) (*Catalog, error) {
	if t := md.Type("roles"); t != "Hash" && t != "" {
		return nil, fmt.Errorf("%s: roles is a %s, not a table", source, strings.ToLower(t))
	}
	var entries map[string]toml.Primitive
	if err := md.PrimitiveDecode(table, &entries); err != nil {
		return nil, fmt.Errorf("%s: [roles]: %w", source, err)
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names)
	var errs []error
	decoded := map[string]roleTOML{}
	var order []string
	skip := map[string]bool{}
	for _, name := range names {
		if name == DefaultsTable {
			if err := defaults(entries[name]); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		// A table named implicitly ([roles.db.check] alone) has no type.
		if t := md.Type("roles", name); t != "Hash" && t != "" {
			if err := scalar(name, entries[name]); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := ValidName(name); err != nil {
			errs = append(errs, fmt.Errorf("%s: role %q: %w", source, name, err))
			skip[name] = true
			continue
		}
		var rt roleTOML
		if err := md.PrimitiveDecode(entries[name], &rt); err != nil {
			errs = append(errs, fmt.Errorf("%s: role %q: %w", source, name, err))
			skip[name] = true
			continue
		}
		decoded[name] = rt
		order = append(order, name)
	}
	// Unknown keys first: a role with a script check has no http, tcp or
	// ttl either, and the script is what the user must hear about.
	unknown := unknownRoleKeys(md, source, skip)
	var roles []Role
	for _, name := range order {
		if len(unknown[name]) > 0 {
			errs = append(errs, unknown[name]...)
			continue
		}
		r, err := decoded[name].role(name, source)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: role %q: %w", source, name, err))
			continue
		}
		roles = append(roles, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cat, err := NewCatalog(roles...)
	if err != nil {
		return nil, err
	}
	return cat, nil
}

// unknownRoleKeys reports, by role, the keys under [roles] that no role
// field took, one per unknown table rather than one per key inside it,
// skipping roles already refused (their keys were never decoded).
func unknownRoleKeys(md toml.MetaData, source string, skip map[string]bool) map[string][]error {
	errs := map[string][]error{}
	var reported []toml.Key
	for _, k := range md.Undecoded() {
		if len(k) < 3 || k[0] != "roles" || skip[k[1]] {
			continue
		}
		if slices.ContainsFunc(reported, func(p toml.Key) bool { return len(k) > len(p) && slices.Equal(k[:len(p)], p) }) {
			continue
		}
		reported = append(reported, k)
		where := fmt.Sprintf("%s: role %q", source, k[1])
		key := strings.Join(k[2:], ".")
		var err error
		switch {
		case len(k) == 4 && k[2] == "check" && isScriptKey(k[3]):
			err = fmt.Errorf("%s: %s: script checks are not allowed: a check runs on every node with the role, and the catalog must not become code there (use http, tcp or ttl)", where, key)
		case len(k) >= 4 && k[2] == "check":
			err = fmt.Errorf("%s: unknown key %s (a check has http, tcp or ttl, and interval, timeout)", where, key)
		default:
			err = fmt.Errorf("%s: unknown key %s (a role has port, tags and check)", where, key)
		}
		errs[k[1]] = append(errs[k[1]], err)
	}
	return errs
}

// role converts a role as written into a validated Role.
func (rt roleTOML) role(name, source string) (Role, error) {
	r := Role{Name: name, Tags: rt.Tags, Source: fmt.Sprintf("[roles.%s] in %s", name, source)}
	if rt.Port != nil {
		if *rt.Port < 0 || *rt.Port > 65535 {
			return Role{}, fmt.Errorf("port %d: outside 0..65535", *rt.Port)
		}
		r.Port = int(*rt.Port)
	}
	if rt.Check != nil {
		ck, err := rt.Check.check()
		if err != nil {
			return Role{}, err
		}
		r.Check = ck
	}
	return normalize(r)
}

// check converts a check as written; normalize validates the rest.
func (ct checkTOML) check() (*Check, error) {
	kinds := 0
	for _, p := range []*string{ct.HTTP, ct.TCP, ct.TTL} {
		if p != nil {
			kinds++
		}
	}
	if kinds != 1 {
		return nil, fmt.Errorf("check: has %d of http, tcp and ttl, want exactly one", kinds)
	}
	var ck Check
	dur := func(key string, p *string, dst *time.Duration) error {
		if p == nil {
			return nil
		}
		d, err := time.ParseDuration(*p)
		if err != nil {
			return fmt.Errorf("check.%s %q: not a duration (e.g. \"10s\", \"1m\")", key, *p)
		}
		if d <= 0 {
			return fmt.Errorf("check.%s %q: must be positive", key, *p)
		}
		*dst = d
		return nil
	}
	switch {
	case ct.HTTP != nil:
		ck.HTTP = *ct.HTTP
		if ck.HTTP == "" {
			return nil, errors.New("check.http: empty")
		}
	case ct.TCP != nil:
		ck.TCP = *ct.TCP
		if ck.TCP == "" {
			return nil, errors.New("check.tcp: empty")
		}
	}
	if err := dur("ttl", ct.TTL, &ck.TTL); err != nil {
		return nil, err
	}
	if err := dur("interval", ct.Interval, &ck.Interval); err != nil {
		return nil, err
	}
	if err := dur("timeout", ct.Timeout, &ck.Timeout); err != nil {
		return nil, err
	}
	return &ck, nil
}

// normalize validates r and applies the defaults (an HTTP or TCP check's
// interval). Errors name the key; the caller names the role and source.
func normalize(r Role) (Role, error) {
	if err := ValidName(r.Name); err != nil {
		return Role{}, err
	}
	if r.Port < 0 || r.Port > 65535 {
		return Role{}, fmt.Errorf("port %d: outside 0..65535", r.Port)
	}
	seen := map[string]bool{}
	for i, tag := range r.Tags {
		if err := validTag(tag); err != nil {
			return Role{}, fmt.Errorf("tags[%d]: %w", i, err)
		}
		if seen[tag] {
			return Role{}, fmt.Errorf("tags[%d] %q: given twice", i, tag)
		}
		seen[tag] = true
	}
	r.Tags = slices.Clone(r.Tags)
	if r.Check != nil {
		ck := *r.Check
		if err := validCheck(&ck); err != nil {
			return Role{}, err
		}
		r.Check = &ck
	}
	return r, nil
}

// validTag: Consul stores any string, but a tag is shown in every view and
// compared to decide convergence, so it must be printable text.
func validTag(tag string) error {
	switch {
	case tag == "":
		return errors.New("empty tag")
	case len(tag) > maxTagLen:
		return fmt.Errorf("tag %.20q… is %d bytes, more than %d", tag, len(tag), maxTagLen)
	case !utf8.ValidString(tag):
		return fmt.Errorf("tag %q is not UTF-8", tag)
	case strings.ContainsFunc(tag, unicode.IsControl):
		return fmt.Errorf("tag %q has control characters", tag)
	}
	return nil
}

// validCheck checks one check and sets its default interval.
func validCheck(ck *Check) error {
	kinds := 0
	for _, set := range []bool{ck.HTTP != "", ck.TCP != "", ck.TTL != 0} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return fmt.Errorf("check: has %d of http, tcp and ttl, want exactly one", kinds)
	}
	bound := func(key string, d, min time.Duration) error {
		switch {
		case d < min:
			return fmt.Errorf("check.%s %s: must be at least %s", key, d, min)
		case d > maxDuration:
			return fmt.Errorf("check.%s %s: must be at most %s", key, d, maxDuration)
		}
		return nil
	}
	if ck.TTL != 0 {
		if ck.Interval != 0 || ck.Timeout != 0 {
			return errors.New("check: interval and timeout apply to http and tcp checks, not ttl")
		}
		return bound("ttl", ck.TTL, minInterval)
	}
	if ck.Interval == 0 {
		ck.Interval = DefaultInterval
	}
	if err := bound("interval", ck.Interval, minInterval); err != nil {
		return err
	}
	if ck.Timeout != 0 {
		if err := bound("timeout", ck.Timeout, time.Millisecond); err != nil {
			return err
		}
	}
	if ck.HTTP != "" {
		return validHTTP(ck.HTTP)
	}
	return validTCP(ck.TCP)
}

// checkTarget checks what is common to an HTTP URL and a TCP address: a
// bounded length, printable, and no placeholder but {address}.
func checkTarget(key, s string) error {
	if len(s) > maxCheckTarget {
		return fmt.Errorf("check.%s: %d bytes, more than %d", key, len(s), maxCheckTarget)
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) {
		return fmt.Errorf("check.%s %q: has spaces or control characters", key, s)
	}
	rest := strings.ReplaceAll(s, AddressPlaceholder, "")
	if i := strings.IndexAny(rest, "{}"); i >= 0 {
		ph := rest[i:]
		if j := strings.IndexByte(ph, '}'); j >= 0 {
			ph = ph[:j+1]
		}
		return fmt.Errorf("check.%s %q: unknown placeholder %q (the only one is %s)", key, s, ph, AddressPlaceholder)
	}
	return nil
}

// exampleAddresses stand in for {address} when a check is validated: an
// IPv4 and an IPv6 node must both get a usable URL or address.
func exampleAddresses() [2]string { return [2]string{"192.0.2.10", "2001:db8::10"} }

func validHTTP(raw string) error {
	if err := checkTarget("http", raw); err != nil {
		return err
	}
	for _, addr := range exampleAddresses() {
		s := ExpandAddress(raw, addr)
		u, err := url.Parse(s)
		if err != nil {
			return fmt.Errorf("check.http %q: not a URL once %s is %s: %w", raw, AddressPlaceholder, addr, err)
		}
		if sch := strings.ToLower(u.Scheme); sch != "http" && sch != "https" {
			return fmt.Errorf("check.http %q: the scheme must be http or https", raw)
		}
		if u.Host == "" || u.Hostname() == "" {
			return fmt.Errorf("check.http %q: no host", raw)
		}
		if p := u.Port(); p != "" {
			if _, err := portNumber(p); err != nil {
				return fmt.Errorf("check.http %q: %w", raw, err)
			}
		}
	}
	return nil
}

func validTCP(raw string) error {
	if err := checkTarget("tcp", raw); err != nil {
		return err
	}
	for _, addr := range exampleAddresses() {
		host, port, err := net.SplitHostPort(ExpandAddress(raw, addr))
		if err != nil {
			return fmt.Errorf("check.tcp %q: not host:port once %s is %s: %w", raw, AddressPlaceholder, addr, err)
		}
		if host == "" {
			return fmt.Errorf("check.tcp %q: no host", raw)
		}
		if _, err := portNumber(port); err != nil {
			return fmt.Errorf("check.tcp %q: %w", raw, err)
		}
	}
	return nil
}

func portNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q: not a number in 1..65535", s)
	}
	return n, nil
}
