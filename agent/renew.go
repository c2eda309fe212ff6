package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/tentacle-deploy/tentacle/internal/pki"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// renewAt is when a certificate is renewed: after two thirds of its life,
// leaving a third for retries if the server is away.
func renewAt(c *tls.Certificate) time.Time {
	life := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)
	return c.Leaf.NotBefore.Add(life * 2 / 3)
}

// renewLoop renews the client certificate when due. Renewal does not touch
// the session or running tasks: new connections use the new certificate.
func (a *Agent) renewLoop(ctx context.Context) {
	// requested stays set until a renewal the server asked for has worked:
	// a failed attempt is retried even though the certificate is not due.
	requested := false
	for attempt := 0; ; {
		due := renewAt(a.cert.Load())
		if wait := time.Until(due); wait > 0 && !requested {
			timer := time.NewTimer(min(wait, time.Hour))
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
				continue
			case <-a.renewNow:
				timer.Stop()
				requested = true
				a.log.Info("the server asks for a certificate renewal (CA rotation)")
			}
		}
		if err := a.renew(ctx); err != nil {
			wait := backoff(attempt)
			attempt++
			a.log.Warn("certificate renewal failed, retrying", zap.Error(err), zap.Duration("in", wait),
				zap.Time("expires", a.cert.Load().Leaf.NotAfter))
			if !sleep(ctx, wait) {
				return
			}
			continue
		}
		attempt, requested = 0, false
	}
}

// renew gets a certificate for a new key and saves both before using them.
func (a *Agent) renew(ctx context.Context) error {
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(a.id.TargetID)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := a.client.RenewCertificate(cctx, &tentaclev1.RenewCertificateRequest{CsrPem: csrPEM})
	if err != nil {
		return wrap("renew certificate", err)
	}
	cert, err := tls.X509KeyPair(resp.GetCertificatePem(), keyPEM)
	if err != nil {
		return fmt.Errorf("renewed certificate does not match the new key: %w", err)
	}
	roots, err := pki.CAPoolFromPEM(resp.GetCaPem())
	if err != nil {
		return fmt.Errorf("renewal brought an unusable CA bundle: %w", err)
	}
	if err := saveRenewed(a.dataDir, resp.GetCertificatePem(), keyPEM); err != nil {
		return err
	}
	// The bundle came over a connection verified against the CAs trusted
	// so far; during a CA rotation it adds the next CA.
	if err := pki.WriteFileAtomic(filepath.Join(a.dataDir, caFile), resp.GetCaPem(), 0o644); err != nil {
		return fmt.Errorf("save CA bundle: %w", err)
	}
	a.roots.Store(roots)
	a.cert.Store(&cert)
	a.log.Info("certificate renewed", zap.Time("not_after", cert.Leaf.NotAfter), zap.Time("next_renewal", renewAt(&cert)))
	return nil
}

// saveRenewed replaces agent.key and agent.crt. Both are written in full
// as .next files first; recoverRenewal finishes the swap if the agent dies
// between the two renames.
func saveRenewed(dataDir string, certPEM, keyPEM []byte) error {
	p := func(name string) string { return filepath.Join(dataDir, name) }
	if err := pki.WriteFileAtomic(p(keyFile+".next"), keyPEM, 0o600); err != nil {
		return fmt.Errorf("save renewed key: %w", err)
	}
	if err := pki.WriteFileAtomic(p(certFile+".next"), certPEM, 0o644); err != nil {
		return fmt.Errorf("save renewed certificate: %w", err)
	}
	if err := os.Rename(p(keyFile+".next"), p(keyFile)); err != nil {
		return fmt.Errorf("save renewed key: %w", err)
	}
	if err := os.Rename(p(certFile+".next"), p(certFile)); err != nil {
		return fmt.Errorf("save renewed certificate: %w", err)
	}
	return nil
}

// recoverRenewal completes or discards a renewal interrupted by a crash, so
// that agent.key and agent.crt always form a pair.
func recoverRenewal(dataDir string) error {
	p := func(name string) string { return filepath.Join(dataDir, name) }
	nextCert, err := os.ReadFile(p(certFile + ".next"))
	if errors.Is(err, os.ErrNotExist) {
		os.Remove(p(keyFile + ".next"))
		return nil
	}
	if err != nil {
		return err
	}
	if nextKey, err := os.ReadFile(p(keyFile + ".next")); err == nil {
		if _, err := tls.X509KeyPair(nextCert, nextKey); err == nil {
			// Crashed before the first rename: finish both.
			if err := os.Rename(p(keyFile+".next"), p(keyFile)); err != nil {
				return err
			}
			return os.Rename(p(certFile+".next"), p(certFile))
		}
	}
	if key, err := os.ReadFile(p(keyFile)); err == nil {
		if _, err := tls.X509KeyPair(nextCert, key); err == nil {
			// Crashed between the renames: the key is already new.
			return os.Rename(p(certFile+".next"), p(certFile))
		}
	}
	// A torn .next pair: the server still accepts the old certificate.
	os.Remove(p(keyFile + ".next"))
	return os.Remove(p(certFile + ".next"))
}
