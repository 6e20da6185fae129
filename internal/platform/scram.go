package platform

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// sarama speaks SCRAM only through a client the application supplies; this is that client
// (RFC 5802, with RFC 7677's SHA-256 and Kafka's SHA-512), written here rather than adding a
// dependency for a hundred lines. Passwords are used as given (no SASLprep), which matches
// Kafka's own tools for ASCII passwords, the kind managed services issue.

type hashKind struct {
	new  func() hash.Hash
	size int
}

var (
	sha256Hash = hashKind{new: sha256.New, size: sha256.Size}
	sha512Hash = hashKind{new: sha512.New, size: sha512.Size}
)

// scramClient is one SCRAM conversation.
type scramClient struct {
	hash  hashKind
	nonce func() (string, error)

	user, password, authzID string
	clientNonce             string
	clientFirstBare         string
	serverSignature         []byte
	step                    int
	done                    bool
}

func newScramClient(h hashKind) *scramClient {
	return &scramClient{hash: h, nonce: randomNonce}
}

func randomNonce() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("scram: nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// saslName escapes a name as RFC 5802 requires: '=' and ',' are written =3D and =2C.
func saslName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// Begin starts a conversation (sarama.SCRAMClient).
func (c *scramClient) Begin(user, password, authzID string) error {
	nonce, err := c.nonce()
	if err != nil {
		return err
	}
	*c = scramClient{hash: c.hash, nonce: c.nonce, user: user, password: password, authzID: authzID, clientNonce: nonce}
	return nil
}

func (c *scramClient) gs2Header() string {
	if c.authzID == "" {
		return "n,,"
	}
	return "n,a=" + saslName(c.authzID) + ","
}

// Step answers the server's last message (sarama.SCRAMClient): first the client-first
// message, then the proof, then it checks the server's signature.
func (c *scramClient) Step(challenge string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		c.clientFirstBare = "n=" + saslName(c.user) + ",r=" + c.clientNonce
		return c.gs2Header() + c.clientFirstBare, nil
	case 2:
		return c.final(challenge)
	case 3:
		c.done = true
		return "", c.verify(challenge)
	default:
		return "", errors.New("scram: conversation already finished")
	}
}

// Done reports whether the conversation is over (sarama.SCRAMClient).
func (c *scramClient) Done() bool { return c.done }

func (c *scramClient) final(serverFirst string) (string, error) {
	attrs := scramAttributes(serverFirst)
	if e, ok := attrs["e"]; ok {
		return "", fmt.Errorf("scram: server refused: %s", e)
	}
	nonce, salt64, iter64 := attrs["r"], attrs["s"], attrs["i"]
	if !strings.HasPrefix(nonce, c.clientNonce) || len(nonce) == len(c.clientNonce) {
		return "", errors.New("scram: server nonce does not extend ours")
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil || len(salt) == 0 {
		return "", fmt.Errorf("scram: bad salt %q", salt64)
	}
	iterations, err := strconv.Atoi(iter64)
	if err != nil || iterations < 1 || iterations > 1<<20 {
		return "", fmt.Errorf("scram: bad iteration count %q", iter64)
	}
	salted, err := pbkdf2.Key(c.hash.new, c.password, salt, iterations, c.hash.size)
	if err != nil {
		return "", fmt.Errorf("scram: derive key: %w", err)
	}
	clientKey := c.hmac(salted, "Client Key")
	h := c.hash.new()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(c.gs2Header())) + ",r=" + nonce
	authMessage := c.clientFirstBare + "," + serverFirst + "," + withoutProof
	proof := c.hmac(storedKey, authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	c.serverSignature = c.hmac(c.hmac(salted, "Server Key"), authMessage)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

func (c *scramClient) verify(serverFinal string) error {
	attrs := scramAttributes(serverFinal)
	if e, ok := attrs["e"]; ok {
		return fmt.Errorf("scram: server refused: %s", e)
	}
	got, err := base64.StdEncoding.DecodeString(attrs["v"])
	if err != nil || subtle.ConstantTimeCompare(got, c.serverSignature) != 1 {
		return errors.New("scram: the server's signature does not match: it does not know the password")
	}
	return nil
}

func (c *scramClient) hmac(key []byte, msg string) []byte {
	m := hmac.New(c.hash.new, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// scramAttributes splits "k=v,k=v" (values may contain '=').
func scramAttributes(msg string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(msg, ",") {
		if k, v, ok := strings.Cut(part, "="); ok && len(k) == 1 {
			out[k] = v
		}
	}
	return out
}
