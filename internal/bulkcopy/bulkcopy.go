// Package bulkcopy copies streams in large chunks, for the bulk paths
// of SSH sessions (a command's pipes, the CLI's stdin and stdout, the
// ProxyCommand bridge), where io.Copy's 32 KiB means one SSH packet,
// and so a goroutine or process wakeup, per 32 KiB.
package bulkcopy

import "io"

// BufSize is the buffer of Copy: eight SSH packets of the 32 KiB that
// golang.org/x/crypto/ssh and OpenSSH send at most.
const BufSize = 256 << 10

// Copy is io.Copy with a BufSize buffer. Unlike io.CopyBuffer it never
// hands the copy to dst's ReadFrom or src's WriteTo, which *os.File and
// the tailnet's TCP connections have and which would copy through a
// 32 KiB buffer of their own.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, BufSize))
}
