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
//
// Small memtables make level-0 tables small and frequent, and goleveldb's defaults compact
// level 0 into level 1 at 4 tables and slow every write by 1 ms from 8 (a pause from 12): a
// reviewer measured 20,000 random 1 KiB writes (a table's recovery, say) taking 0.50 s with 95
// delayed writes and 76 MB rewritten, against 0.17 s with the defaults. Compacting at 8 tables
// and slowing from 16 (pausing from 24) took 0.29-0.34 s with no delay and 24 MB rewritten
// (BenchmarkStateStorageRandomWrites). Against the defaults, the services' CPU per order in
// the benchmark stayed within 0-4% and their memory fell by two thirds; a bloom filter on top
// measured no better (Session 6 in docs/benchmarks.md).
const (
	levelDBWriteBuffer  = 512 << 10
	levelDBBlockCache   = 1 << 20
	levelDBL0Compaction = 8
	levelDBL0Slowdown   = 16
	levelDBL0Pause      = 24
)

// levelDBOptions are the options of every state database; a fresh value per database
// (goleveldb copies them, but nothing here relies on that).
func levelDBOptions() *opt.Options {
	return &opt.Options{
		WriteBuffer:            levelDBWriteBuffer,
		BlockCacheCapacity:     levelDBBlockCache,
		CompactionL0Trigger:    levelDBL0Compaction,
		WriteL0SlowdownTrigger: levelDBL0Slowdown,
		WriteL0PauseTrigger:    levelDBL0Pause,
	}
}

// stateStorage builds the LevelDB storage of one table or view partition under path.
func stateStorage(path string) storage.Builder {
	return func(topic string, partition int32) (storage.Storage, error) {
		return storage.BuilderWithOptions(path, levelDBOptions())(topic, partition)
	}
}
