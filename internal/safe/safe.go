// Package safe runs third-party parsers of untrusted bytes.
package safe

import "fmt"

// Parse runs f, turning a panic into an error: a malformed SPS or RTP
// packet that trips a bug in a parser we depend on must fail that input,
// not take the server down.
func Parse(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parser panic: %v", r)
		}
	}()
	return f()
}
