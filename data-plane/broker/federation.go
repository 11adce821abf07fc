package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/eddy-streams/eddy/data-plane/sasl"
	"github.com/eddy-streams/eddy/internal/federation"
)

// poolVerifier lets OAUTHBEARER clients authenticate with a token of
// their organisation's own identity provider (internal/federation).
type poolVerifier struct{ v *federation.Verifier }

func (p poolVerifier) VerifyPoolToken(ctx context.Context, pool, token string) (sasl.Principal, error) {
	id, err := p.v.Verify(ctx, pool, token)
	if errors.Is(err, federation.ErrRejected) {
		return sasl.Principal{}, fmt.Errorf("%w: %v", sasl.ErrAuthentication, err)
	}
	if err != nil {
		return sasl.Principal{}, err
	}
	return sasl.Principal{Org: id.Org, Cluster: id.Cluster, ServiceAccount: id.ServiceAccount,
		Via: id.Pool + " " + id.Subject, Expires: id.Expires}, nil
}
