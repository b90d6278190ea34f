package logserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DefaultLookback is how far back ListLogEntries looks when the filter does
// not restrict timestamp, as in Cloud Logging.
const DefaultLookback = 24 * time.Hour

// pageToken is the decoded form of a next_page_token. It records the key of
// the last entry examined, so a page starts right after it however many
// entries were written meanwhile, and a hash of the query, so a token is
// not reused with another one. Lo is the 24-hour default bound computed by
// the first page, so later pages use the same window.
type pageToken struct {
	Q     uint64 `json:"q"`
	Sec   int64  `json:"s"`
	Nsec  int32  `json:"n"`
	ID    string `json:"i"`
	Proj  string `json:"p"`
	LoSet bool   `json:"ls,omitempty"`
	LoSec int64  `json:"lo,omitempty"`
	LoNs  int32  `json:"ln,omitempty"`
}

func encodeToken(t pageToken) string {
	b, _ := json.Marshal(t) // cannot fail: plain fields
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(s string) (pageToken, error) {
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return t, fmt.Errorf("page_token: not a token from this server")
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("page_token: not a token from this server")
	}
	return t, nil
}

// queryHash identifies the parameters a page token belongs to.
func queryHash(projects map[string]bool, filter string, desc bool) uint64 {
	ps := make([]string, 0, len(projects))
	for p := range projects {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	h := fnv.New64a()
	for _, p := range ps {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	h.Write([]byte{1})
	h.Write([]byte(filter))
	if desc {
		h.Write([]byte{2})
	}
	return h.Sum64()
}

func parseOrder(s string) (desc bool, err error) {
	switch strings.Join(strings.Fields(strings.ToLower(s)), " ") {
	case "", "timestamp asc", "timestamp":
		return false, nil
	case "timestamp desc":
		return true, nil
	}
	return false, fmt.Errorf(`order_by: %q is not supported (use "timestamp asc" or "timestamp desc")`, s)
}

// ListLogEntries implements the RPC.
func (s *Server) ListLogEntries(ctx context.Context, req *loggingpb.ListLogEntriesRequest) (*loggingpb.ListLogEntriesResponse, error) {
	s.listCalls.Add(1)
	if err := s.injectedFailure(); err != nil {
		return nil, err
	}
	projects, err := projectSet(req.GetResourceNames())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	desc, err := parseOrder(req.GetOrderBy())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, status.Errorf(codes.InvalidArgument, "page_size: %d is negative", size)
	case size == 0:
		size = 50
	case size > 1000:
		size = 1000
	}
	f, err := ParseFilter(req.GetFilter())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	q := queryHash(projects, req.GetFilter(), desc)
	var cursor *key
	lo, hi := f.lo, f.hi
	var defaultLo bound
	if tok := req.GetPageToken(); tok != "" {
		pt, err := decodeToken(tok)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if pt.Q != q {
			return nil, status.Error(codes.InvalidArgument, "page_token: was issued for a different filter, order_by or resource_names")
		}
		cursor = &key{t: ts{pt.Sec, pt.Nsec}, id: pt.ID, project: pt.Proj}
		if pt.LoSet {
			defaultLo = bound{set: true, t: ts{pt.LoSec, pt.LoNs}, inclusive: true}
		}
	} else if !f.hasTimestamp {
		defaultLo = bound{set: true, t: tsOf(s.opts.Now().Add(-DefaultLookback)), inclusive: true}
	}
	if defaultLo.set {
		lo = tighterLo(lo, defaultLo)
	}
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}

	resp := &loggingpb.ListLogEntriesResponse{}
	s.mu.RLock()
	defer s.mu.RUnlock()
	live := s.store.live()
	from, to := 0, len(live)
	if lo.set {
		from = s.store.firstAtOrAfter(lo.t, lo.inclusive)
	}
	if hi.set {
		to = s.store.firstAtOrAfter(hi.t, !hi.inclusive)
	}
	if cursor != nil {
		if desc {
			to = min(to, s.store.firstAtOrAfterKey(*cursor))
		} else {
			from = max(from, s.store.firstAfterKey(*cursor))
		}
	}
	if from >= to {
		return resp, nil
	}
	match := func(r *rec) bool { return projects[r.project] && f.Match(r.e) }
	// Walk [from, to) in the requested direction.
	i, step, end := from, 1, to
	if desc {
		i, step, end = to-1, -1, from-1
	}
	bytes, examined := 0, 0
	var last *rec
	for ; i != end; i += step {
		r := live[i]
		if len(resp.Entries) == size || len(resp.Entries) > 0 && bytes >= maxPageBytes {
			// The page is full: say there is more only if there is.
			for ; i != end; i += step {
				if match(live[i]) {
					resp.NextPageToken = encodeToken(tokenAt(q, last.key, defaultLo))
					break
				}
			}
			return resp, nil
		}
		if s.opts.ScanLimit > 0 && examined >= s.opts.ScanLimit {
			// A long search: hand back what was found so far and a token
			// that resumes after the last entry examined.
			resp.NextPageToken = encodeToken(tokenAt(q, live[i-step].key, defaultLo))
			return resp, nil
		}
		examined++
		if !match(r) {
			continue
		}
		resp.Entries = append(resp.Entries, r.e)
		bytes += r.size
		last = r
	}
	return resp, nil
}

func tokenAt(q uint64, k key, defaultLo bound) pageToken {
	t := pageToken{Q: q, Sec: k.t.sec, Nsec: k.t.nsec, ID: k.id, Proj: k.project}
	if defaultLo.set {
		t.LoSet, t.LoSec, t.LoNs = true, defaultLo.t.sec, defaultLo.t.nsec
	}
	return t
}

func (s *Server) injectedFailure() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	if s.failN <= 0 {
		return nil
	}
	s.failN--
	msg := "logserver: injected failure (FailLists)"
	if s.failCode == codes.ResourceExhausted {
		msg = "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' (injected by logserver.FailLists)"
	}
	return status.Error(s.failCode, msg)
}

// DeleteLog implements the RPC: it removes every entry of the log.
func (s *Server) DeleteLog(ctx context.Context, req *loggingpb.DeleteLogRequest) (*emptypb.Empty, error) {
	name := req.GetLogName()
	if _, err := projectOfLogName(name); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "log_name: %v", err)
	}
	s.mu.Lock()
	n := s.store.removeIf(func(r *rec) bool { return r.log == name })
	s.mu.Unlock()
	if n == 0 {
		return nil, status.Errorf(codes.NotFound, "log %s has no entries", name)
	}
	return &emptypb.Empty{}, nil
}

func cloneEntry(e *loggingpb.LogEntry) *loggingpb.LogEntry {
	return proto.CloneOf(e)
}

func tsProto(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
