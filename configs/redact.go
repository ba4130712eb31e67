package configs

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/podiumlive/podium/internal/redact"
)

// RedactedYAML prints the effective config with every secret hidden: the
// value of each key whose name says it is a secret (admin_password,
// publish_key, play_secret, redis_password, ...: redact.Key) becomes
// redact.Value, and every other string has the userinfo and secret query
// values of its URLs masked (hooks, forward destinations and backend,
// RTSP sources, a Redis URL). It works on the YAML tree, so a section
// added later is covered without being listed here.
func (c *Config) RedactedYAML() ([]byte, error) {
	var root yaml.Node
	if err := root.Encode(c); err != nil {
		return nil, fmt.Errorf("encode config yaml: %w", err)
	}
	redactNode(&root, false)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, fmt.Errorf("encode config yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode config yaml: %w", err)
	}
	return buf.Bytes(), nil
}

// redactNode hides secrets below n; secret is true under a secret key.
func redactNode(n *yaml.Node, secret bool) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			redactNode(c, secret)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			redactNode(n.Content[i+1], secret || redact.Key(n.Content[i].Value))
		}
	case yaml.ScalarNode:
		if n.Tag != "!!str" || n.Value == "" {
			return
		}
		if secret {
			n.Value, n.Style = redact.Value, 0
			return
		}
		if v := redactScalar(n.Value); v != n.Value {
			n.Value, n.Style = v, 0
		}
	}
}

// redactScalar masks the secrets of a URL-looking string.
func redactScalar(s string) string {
	if strings.Contains(s, "://") {
		return redactURL(s)
	}
	return redact.Text(s)
}
