package tui

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetdeck/fleetdeck/fleet"
)

// fingerprint renders everything reachable from v as text: every field,
// unexported ones included, following each pointer once, maps in key
// order. Functions, channels, contexts and the console's outside services
// (the feed, the run manager, the log opener and its streams, which other
// goroutines use) are written as their type and address only.
func fingerprint(v any) string {
	var b strings.Builder
	type seenKey struct {
		p uintptr
		t reflect.Type
	}
	seen := map[seenKey]bool{}
	ctxType := reflect.TypeFor[context.Context]()
	timeType := reflect.TypeFor[time.Time]()
	outside := func(t reflect.Type) bool {
		if t.Implements(ctxType) {
			return true
		}
		switch t {
		case reflect.TypeFor[*fakeProv](), reflect.TypeFor[*fakeLogs](), reflect.TypeFor[*fakeStream](), reflect.TypeFor[*fleet.Publisher]():
			return true
		}
		return false
	}
	var walk func(b *strings.Builder, v reflect.Value)
	walk = func(b *strings.Builder, v reflect.Value) {
		switch v.Kind() {
		case reflect.Invalid:
			b.WriteString("<invalid>")
		case reflect.Bool:
			b.WriteString(strconv.FormatBool(v.Bool()))
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			b.WriteString(strconv.FormatInt(v.Int(), 10))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			b.WriteString(strconv.FormatUint(v.Uint(), 10))
		case reflect.Float32, reflect.Float64:
			b.WriteString(strconv.FormatFloat(v.Float(), 'g', -1, 64))
		case reflect.String:
			b.WriteString(strconv.Quote(v.String()))
		case reflect.Func, reflect.Chan, reflect.UnsafePointer:
			fmt.Fprintf(b, "%s@%x", v.Type(), v.Pointer())
		case reflect.Interface:
			if v.IsNil() {
				b.WriteString("nil")
				return
			}
			if outside(v.Elem().Type()) {
				fmt.Fprintf(b, "%s(outside)", v.Elem().Type())
				return
			}
			walk(b, v.Elem())
		case reflect.Pointer:
			if v.IsNil() {
				b.WriteString("nil")
				return
			}
			if outside(v.Type()) {
				fmt.Fprintf(b, "%s(outside)@%x", v.Type(), v.Pointer())
				return
			}
			k := seenKey{v.Pointer(), v.Type()}
			if seen[k] {
				fmt.Fprintf(b, "&%x", v.Pointer())
				return
			}
			seen[k] = true
			b.WriteByte('&')
			walk(b, v.Elem())
		case reflect.Slice, reflect.Array:
			if v.Kind() == reflect.Slice && v.IsNil() {
				b.WriteString("nil")
				return
			}
			b.WriteByte('[')
			for i := range v.Len() {
				walk(b, v.Index(i))
				b.WriteByte(',')
			}
			b.WriteByte(']')
		case reflect.Map:
			if v.IsNil() {
				b.WriteString("nil")
				return
			}
			type kv struct{ k, v string }
			var kvs []kv
			it := v.MapRange()
			for it.Next() {
				var kb, vb strings.Builder
				walk(&kb, it.Key())
				walk(&vb, it.Value())
				kvs = append(kvs, kv{kb.String(), vb.String()})
			}
			sort.Slice(kvs, func(i, j int) bool { return kvs[i].k < kvs[j].k })
			b.WriteByte('{')
			for _, x := range kvs {
				b.WriteString(x.k + ":" + x.v + ",")
			}
			b.WriteByte('}')
		case reflect.Struct:
			if v.Type() == timeType {
				// wall and ext; the location by address (its caches are
				// the time package's).
				fmt.Fprintf(b, "time(%d,%d,%x)", v.Field(0).Uint(), v.Field(1).Int(), v.Field(2).Pointer())
				return
			}
			b.WriteString(v.Type().String() + "{")
			for i := range v.NumField() {
				b.WriteString(v.Type().Field(i).Name + ":")
				walk(b, v.Field(i))
				b.WriteByte(' ')
			}
			b.WriteByte('}')
		default:
			fmt.Fprintf(b, "<%s>", v.Kind())
		}
	}
	walk(&b, reflect.ValueOf(v))
	return b.String()
}

// View changes nothing: rendering every view, with its prompts and
// questions open, leaves everything the model holds as it was.
func TestViewChangesNothing(t *testing.T) {
	p := newFakeProv()
	seedRuns(p)
	fl := &fakeLogs{}
	h := newHarnessWith(t, incidentSnapshot(), 100, 30, false, func(o *Options) { o.Provisioner = p; o.Logs = fl })
	h.clk.add(time.Second)
	check := func(what string) {
		t.Helper()
		before := fingerprint(h.m)
		a := h.m.View().Content
		c := h.m.View().Content
		after := fingerprint(h.m)
		if before != after {
			i := 0
			for i < len(before) && i < len(after) && before[i] == after[i] {
				i++
			}
			t.Fatalf("%s: View changed the model near %q → %q", what,
				before[max(i-200, 0):min(i+200, len(before))], after[max(i-200, 0):min(i+200, len(after))])
		}
		if a != c {
			t.Fatalf("%s: two frames in a row differ", what)
		}
	}
	views := allViews(t, h, fl, func(c component) {
		check(c.title())
		for _, k := range []string{"/", ":", "@"} {
			if c.keys().has(k) {
				h.keys(k, "x")
				check(c.title() + " " + k + " prompt")
				h.keys("esc")
			}
		}
	})
	if len(views) != 14 {
		t.Fatalf("%d views", len(views))
	}
	h.keys(":runs")
	h.press("enter", "c")
	check("cancel question")
}
