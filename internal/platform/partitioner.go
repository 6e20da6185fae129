package platform

import (
	"encoding/binary"
	"hash"
)

// murmur2 is Kafka's Java client hash (org.apache.kafka.common.utils.Utils.murmur2), used by
// the Java default partitioner and by franz-go's sticky key partitioner.
func murmur2(data []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	i := 0
	for ; length-i >= 4; i += 4 {
		k := binary.LittleEndian.Uint32(data[i:])
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch length - i {
	case 3:
		h ^= uint32(data[i+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[i+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[i])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// positiveMurmur2 is Java's toPositive(murmur2(key)): the sign bit masked off.
func positiveMurmur2(key []byte) uint32 { return murmur2(key) & 0x7fffffff }

// PartitionFor returns the partition a key lands on among n partitions, exactly as Java clients,
// franz-go's default partitioner and every goka component configured by this package place it.
func PartitionFor(key string, n int32) int32 {
	return int32(positiveMurmur2([]byte(key)) % uint32(n))
}

// Hasher returns the hash goka uses to place keys (WithHasher, WithViewHasher,
// WithEmitterHasher). Its Sum32 is the positive-masked murmur2 of everything written, so goka's
// `abs(int32(h)) % n` in processors and views and sarama's `int32(h) % n` in producers both
// reduce to PartitionFor — no negative hash reaches either.
func Hasher() func() hash.Hash32 {
	return func() hash.Hash32 { return &murmur2Hash{} }
}

// murmur2Hash buffers the key: murmur2 is not streaming, and keys are short.
type murmur2Hash struct{ buf []byte }

func (h *murmur2Hash) Write(p []byte) (int, error) { h.buf = append(h.buf, p...); return len(p), nil }
func (h *murmur2Hash) Sum(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, h.Sum32())
}
func (h *murmur2Hash) Reset()         { h.buf = h.buf[:0] }
func (h *murmur2Hash) Size() int      { return 4 }
func (h *murmur2Hash) BlockSize() int { return 4 }
func (h *murmur2Hash) Sum32() uint32  { return positiveMurmur2(h.buf) }
