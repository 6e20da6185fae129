package platform

import (
	"github.com/lovoo/goka/storage"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// LevelDB's defaults are sized for one large database per process: a 4 MiB write buffer
// (allocated whole when a memtable is made, and up to three of them per database: the active
// one, the one being flushed and a pooled spare) and an 8 MiB block cache. goka opens one
// database per partition of every table and view, 54 in the ecosystem with 6 partitions, so
// the defaults let the services' state alone reach about a gigabyte: the heap profile of a
// long run (190,000 orders, commit 25ca006, docs/benchmarks.md) had 228 MiB in memtables and
// 112 MiB in block caches, still growing, and the resident size was twice the heap (the
// garbage collector's target). The tables are small and written a few records at a time, so
// a 512 KiB memtable and a 1 MiB block cache hold everything hot; what is not cached is read
// from the operating system's page cache, which the kernel sizes against the whole machine.
const (
	levelDBWriteBuffer = 512 << 10
	levelDBBlockCache  = 1 << 20
)

// levelDBOptions are the options of every state database; a fresh value per database, since
// goleveldb may keep the pointer.
func levelDBOptions() *opt.Options {
	return &opt.Options{
		WriteBuffer:        levelDBWriteBuffer,
		BlockCacheCapacity: levelDBBlockCache,
	}
}

// stateStorage builds the LevelDB storage of one table or view partition under path.
func stateStorage(path string) storage.Builder {
	return func(topic string, partition int32) (storage.Storage, error) {
		return storage.BuilderWithOptions(path, levelDBOptions())(topic, partition)
	}
}
