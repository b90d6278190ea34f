package consul

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/hashicorp/consul/api"
)

// Describe wraps a Consul error with what was being done and, for the
// errors users can act on, what to do: a 403 names the token in use (the
// Client's TokenSource) or says how to give one; a 429 says Consul is
// limiting this address's connections.
func (c *Client) Describe(what string, err error) error {
	var se api.StatusError
	if errors.As(err, &se) {
		switch se.Code {
		case http.StatusForbidden:
			hint := "set CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE or --token-file to a token with node:read and service:read"
			if c.tokenSource != "" {
				hint = "the token from " + c.tokenSource + " is unknown to Consul or lacks node:read and service:read"
			}
			return fmt.Errorf("%s: permission denied by Consul ACLs (%s): %s: %w", what, se.Body, hint, err)
		case http.StatusTooManyRequests:
			return fmt.Errorf("%s: Consul is limiting connections from this address (HTTP 429): %w", what, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// IsSilence reports whether err means Consul did not answer at all (the
// request's deadline passed) rather than answering with an error: a
// frozen agent or a black-holed connection, as opposed to a refused
// connection or an HTTP error.
func IsSilence(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
