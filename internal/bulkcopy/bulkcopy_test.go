package bulkcopy

import (
	"bytes"
	"io"
	"testing"
)

// chunkReader serves data in reads as large as the caller asks and
// records the largest buffer it was given.
type chunkReader struct {
	data    []byte
	largest int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	r.largest = max(r.largest, len(p))
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// WriteTo is what io.Copy would prefer; Copy must not use it.
func (r *chunkReader) WriteTo(io.Writer) (int64, error) {
	panic("Copy used the source's WriteTo")
}

// chunkWriter records the writes it gets.
type chunkWriter struct {
	bytes.Buffer
	writes int
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

// ReadFrom is what io.Copy would prefer; Copy must not use it.
func (w *chunkWriter) ReadFrom(io.Reader) (int64, error) {
	panic("Copy used the destination's ReadFrom")
}

func TestCopyUsesLargeChunks(t *testing.T) {
	data := bytes.Repeat([]byte("devmesh!"), 3*BufSize/8)
	src := &chunkReader{data: data}
	dst := &chunkWriter{}
	n, err := Copy(dst, src)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("Copy = %d, %v; want %d, nil", n, err, len(data))
	}
	if !bytes.Equal(dst.Bytes(), data) {
		t.Fatal("the copy differs from the source")
	}
	if src.largest != BufSize {
		t.Errorf("largest read buffer %d, want %d", src.largest, BufSize)
	}
	if dst.writes != 3 {
		t.Errorf("%d writes for 3 buffers' worth, want 3", dst.writes)
	}
}
